"""Parent and child tables on the autoregressive engine: keys fresh and resolving, orders kept, children per parent
shaped like the seed's, saved and loaded, and the checks able to fail."""

import numpy as np
import pandas as pd
import pytest

from synthforge.errors import UserError
from synthforge.families.relational import RelationalGenerator, match_rows, parse_schema
from synthforge.quality.relational import order_holds, relational_metrics

SCHEMA = {"customers": {"primary_key": "customer_id"},
          "orders": {"primary_key": "order_id", "foreign_keys": {"customer_id": "customers.customer_id"},
                     "sequence": {"order_by": "ordered"}}}


def shop(n=300, seed=0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cust = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(n)],
                         "segment": rng.choice(["retail", "sme", "corp"], n, p=[.6, .3, .1])})
    k = rng.poisson(np.where(cust.segment == "corp", 8, np.where(cust.segment == "sme", 4, 1.5)))
    rows = []
    for cid, seg, m in zip(cust.customer_id, cust.segment, k):
        days = np.sort(rng.integers(0, 365, m))
        rows += [{"customer_id": cid,
                  "ordered": pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(d)),
                  "amount": round(float(rng.gamma(2, 50 if seg == "retail" else 400)), 2)} for d in days]
    orders = pd.DataFrame(rows)
    orders.insert(0, "order_id", [f"O{i:06d}" for i in range(len(orders))])
    return {"customers": cust, "orders": orders}


@pytest.fixture(scope="module")
def fitted():
    real = shop()
    gen = RelationalGenerator(SCHEMA, {"max_epochs": 60}, random_state=0).fit(real)
    return real, gen, gen.sample(seed=1)


def test_keys_resolve_are_fresh_and_orders_hold(fitted):
    real, gen, syn = fitted
    m = relational_metrics(real, syn, gen.specs)
    rel = m["relationships"][0]
    assert rel["fk_resolved"] == 1.0 and rel["seed_keys_reused"] == 0.0 and rel["order_holds"] == 1.0
    assert syn["customers"]["customer_id"].is_unique and syn["orders"]["order_id"].is_unique
    assert not syn["orders"]["order_id"].isin(real["orders"]["order_id"]).any()
    assert rel["children_per_parent_ks_complement"] >= 0.85
    assert m["tables"]["orders"]["column_shapes"] >= 0.85
    assert list(syn["orders"].columns) == list(real["orders"].columns)


def test_children_are_drawn_given_their_parent(fitted):
    """Corporate customers order larger amounts in the seed (gamma scale 400 vs 50): the children know it."""
    _, _, syn = fitted
    segment = syn["orders"]["customer_id"].map(syn["customers"].set_index("customer_id")["segment"])
    means = syn["orders"].groupby(segment)["amount"].mean()
    assert means["corp"] > 2 * means["retail"]


def test_a_broken_order_fails_its_check(fitted):
    _, _, syn = fitted
    broken = syn["orders"].copy()
    broken["ordered"] = broken["ordered"].sample(frac=1, random_state=0).to_numpy()
    assert order_holds(broken, "customer_id", "ordered") < 0.8


def test_same_seed_same_tables_after_save_and_load(fitted, tmp_path):
    _, gen, syn = fitted
    gen.save(tmp_path / "model")
    again = RelationalGenerator.load(tmp_path / "model").sample(seed=1)
    for name in syn:
        pd.testing.assert_frame_equal(again[name], syn[name])


@pytest.mark.parametrize("schema, message", [
    ({"a": {"primary_key": "id"}, "b": {"foreign_keys": {"a_id": "z.id"}}}, r"seed.tables.b.foreign_keys.a_id: 'z.id'"),
    ({"a": {"primary_key": "id", "foreign_keys": {"b_id": "b.id"}}, "b": {"primary_key": "id",
                                                                           "foreign_keys": {"a_id": "a.id"}}},
     "form a cycle"),
    ({"a": {"sequence": {"order_by": "t"}}}, "a sequence needs a foreign key"),
    ({"a": {"primary_key": "id"}, "b": {"primary_key": "id", "foreign_keys": {"a_id": "a.id"}},
      "c": {"foreign_keys": {"a_id": "a.id", "b_id": "b.id"}}},
     r"seed.tables.c.foreign_keys.b_id: a second parent must be a table with no foreign key"),
    ({"a": {"primary_key": "id"}, "b": {"primary_key": "id"}}, "one root table .* got a, b"),
    ({"a": {"primary_key": "id", "copy": True}}, r"seed.tables.a.copy: only a lookup table"),
])
def test_schema_mistakes_are_one_line(schema, message):
    with pytest.raises(UserError, match=message):
        parse_schema(schema)


def test_orphan_foreign_keys_are_refused_with_their_share():
    real = shop(50)
    real["orders"].loc[:4, "customer_id"] = "NOPE"
    with pytest.raises(UserError, match=r"seed.tables.orders.foreign_keys: .*% of 'customer_id' values are not in "
                                        r"customers.customer_id \(e.g. 'NOPE'\)"):
        RelationalGenerator(SCHEMA).fit(real)


def with_stores(real: dict[str, pd.DataFrame], seed=0) -> dict[str, pd.DataFrame]:
    """The shop plus a lookup table of stores, each order's second parent: 3 big stores take most orders, and
    corporate customers order at big stores."""
    rng = np.random.default_rng(seed)
    stores = pd.DataFrame({"store_id": [f"S{i:02d}" for i in range(12)], "size": ["big"] * 3 + ["small"] * 9,
                           "region": rng.choice(["north", "south"], 12)})
    segment = real["orders"]["customer_id"].map(real["customers"].set_index("customer_id")["segment"])
    big = rng.random(len(segment)) < np.where(segment == "corp", 0.95, 0.6)
    store = np.where(big, rng.integers(0, 3, len(big)), rng.integers(3, 12, len(big)))
    return {**real, "orders": real["orders"].assign(store_id=stores["store_id"].to_numpy()[store]), "stores": stores}


STORES_SCHEMA = {**SCHEMA, "stores": {"primary_key": "store_id"},
                 "orders": {**SCHEMA["orders"], "foreign_keys": {"customer_id": "customers.customer_id",
                                                                 "store_id": "stores.store_id"},
                            "sequence": {"entity": "customer_id", "order_by": "ordered"}}}


def test_a_second_parent_is_drawn_once_and_chosen_by_what_the_child_drew():
    """orders → customers (the tree) and → stores (a lookup table): stores drawn once with fresh keys, every
    order's store resolves, big stores get most orders and corporate customers still order at big stores."""
    real = with_stores(shop())
    specs = parse_schema(STORES_SCHEMA)
    assert [s.name for s in specs] == ["customers", "orders", "stores"] and specs[-1].side
    assert specs[1].links == (("store_id", "stores", "store_id"),)
    gen = RelationalGenerator(STORES_SCHEMA, {"max_epochs": 60}, random_state=0).fit(real)
    syn = gen.sample(seed=1)
    stores, orders = syn["stores"], syn["orders"]
    assert len(stores) == 12 and stores["store_id"].is_unique and not stores["store_id"].isin(real["stores"]
                                                                                             ["store_id"]).any()
    assert orders["store_id"].isin(set(stores["store_id"])).all()
    size = orders["store_id"].map(stores.set_index("store_id")["size"])
    segment = orders["customer_id"].map(syn["customers"].set_index("customer_id")["segment"])
    assert (size == "big").mean() > 0.5  # real: about 0.65 of orders at the 3 big stores
    assert (size[segment == "corp"] == "big").mean() > (size[segment == "retail"] == "big").mean() + 0.1
    links = {r["foreign_key"]: r for r in relational_metrics(real, syn, gen.specs)["relationships"]}
    assert links["store_id"]["fk_resolved"] == 1.0 and links["store_id"]["seed_keys_reused"] == 0.0
    assert "order_holds" in links["customer_id"] and "order_holds" not in links["store_id"]
    again = gen.sample(seed=1, sides=gen.sample_sides(1))
    pd.testing.assert_frame_equal(again["orders"], orders)


def test_match_rows_takes_the_nearest_with_room_and_leaves_unknowns_out():
    candidates = pd.DataFrame({"kind": ["a", "a", "b", "c"], "n": [1.0, 1.0, 5.0, 9.0]})
    kinds = {"kind": "categorical", "n": "numerical"}
    wanted = pd.DataFrame({"kind": ["a"] * 40 + ["c", None], "n": [1.0] * 40 + [1.0, None]})
    rng = np.random.default_rng(0)
    free = match_rows(wanted, candidates, kinds, rng)
    assert set(free[:40]) <= {0, 1} and free[40] == 3 and free[41] == -1  # the category first, then the number
    shared = match_rows(wanted, candidates, kinds, rng, weights=np.array([3, 1, 10, 10]))
    counts = np.bincount(shared[:40], minlength=4)
    assert counts[2:].sum() == 0 and 28 <= counts[0] <= 32 and counts[1] >= 8  # 3 : 1, as the weights say


def test_a_copied_lookup_table_keeps_its_rows_under_new_keys(tmp_path):
    """copy: true (reference data): the stores' rows as they are, keys renumbered, each order's store resolving;
    saved and loaded, the same tables."""
    real = with_stores(shop(120, seed=2))
    schema = {**STORES_SCHEMA, "stores": {"primary_key": "store_id", "copy": True}}
    gen = RelationalGenerator(schema, {"max_epochs": 20}, random_state=0).fit(real)
    syn = gen.sample(seed=3)
    stores = syn["stores"]
    pd.testing.assert_frame_equal(stores.drop(columns="store_id"), real["stores"].drop(columns="store_id"))
    assert not stores["store_id"].isin(real["stores"]["store_id"]).any() and stores["store_id"].is_unique
    assert syn["orders"]["store_id"].isin(set(stores["store_id"])).all()
    gen.save(tmp_path / "model")
    again = RelationalGenerator.load(tmp_path / "model").sample(seed=3)
    for name in syn:
        pd.testing.assert_frame_equal(again[name], syn[name])
