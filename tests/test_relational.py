"""Parent and child tables on the autoregressive engine: keys fresh and resolving, orders kept, children per parent
shaped like the seed's, saved and loaded, and the checks able to fail."""

import numpy as np
import pandas as pd
import pytest

from synthforge.errors import UserError
from synthforge.families.relational import RelationalGenerator, parse_schema
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
