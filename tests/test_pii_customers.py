"""The issue's customers table through `synthforge init` and `synthforge run`: integer phones and cards, names under
`holder`, zips with leading zeros, birth dates. No output value of those columns is a seed value, each keeps the
seed's format, and the recipe comments and the report say how each column was treated and why."""

import json

import numpy as np
import pandas as pd
import phonenumbers
import yaml

from synthforge.cli import main
from synthforge.data.pii import luhn_digit, luhn_valid


def customers(n=800, seed=7) -> pd.DataFrame:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    phones = []
    while len(phones) < n:
        v = int(rng.integers(2_000_000_000, 9_999_999_999))
        if phonenumbers.is_valid_number(phonenumbers.parse(str(v), "US")):
            phones.append(v)
    bodies = ["4" + "".join(map(str, rng.integers(0, 10, 14))) for _ in range(n)]
    return pd.DataFrame({
        "customer_id": np.arange(1, n + 1),
        "holder": [fake.name() for _ in range(n)],
        "email": [fake.email() for _ in range(n)],
        "phone": phones,  # 10-digit integers
        "card_number": [int(b + luhn_digit(b)) for b in bodies],  # 16-digit integers
        "birth_date": [fake.date_of_birth(minimum_age=18, maximum_age=85).isoformat() for _ in range(n)],
        "zip": [f"{int(z):05d}" for z in rng.integers(500, 99999, n)],  # text in the CSV, some with leading zeros
        "plan": rng.choice(["basic", "plus", "premium"], n, p=[0.5, 0.35, 0.15]),
        "spend": np.where(rng.random(n) < 0.54, 0.0, np.round(rng.gamma(2, 50, n), 2)),
        "churned": rng.random(n) < 0.2,
    })


def test_customers_init_and_run_never_copy_personal_data(tmp_path):
    from synthforge.engine.pipeline import read_output

    seed = customers()
    csv = tmp_path / "customers.csv"
    seed.to_csv(csv, index=False)
    seed = pd.read_csv(csv, dtype=str)  # the values as the file writes them
    recipe = tmp_path / "customers.yaml"
    assert main(["init", str(csv), "--out", str(recipe)]) == 0
    text = recipe.read_text()
    for line in ("#   phone: pii (phone (personal data): header 'phone' means a phone number",
                 "#   card_number: pii (card number (personal data)", "#   holder: pii (name (personal data)",
                 "#   zip: pii (postcode (personal data)", "#   customer_id: id (header 'customer_id' names an id"):
        assert line in text, line
    config = yaml.safe_load(text)
    assert config["quality"]["gates"]["max_value_leak_excess"] == 0.15  # the starter gates the value leak
    config["generator"] = {"family": "autoregressive", "params": {"max_epochs": 3}}
    config["output"]["rows"] = 300
    config["quality"]["metric_rows"] = 300
    recipe.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    code = main(["run", str(recipe), "--out", str(out), "-q"])
    df = read_output(out)
    assert code in (0, 1) and len(df) == 300 and list(df.columns) == list(seed.columns)

    for col in ("holder", "email", "phone", "card_number", "birth_date", "zip", "customer_id"):
        assert not df[col].astype(str).isin(seed[col]).any(), col
    assert df["zip"].map(type).eq(str).all() and df["zip"].str.fullmatch(r"\d{5}").all()
    assert df["phone"].dtype.kind == "i" and df["card_number"].dtype.kind == "i"
    assert df["card_number"].astype(str).map(luhn_valid).all()
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(str(p), "US")) for p in df["phone"])
    assert df["holder"].str.fullmatch(r"[A-Z][a-z'.-]+( [A-Z][A-Za-z'.-]+)+").mean() > 0.95  # names, capitalised
    assert int(df["customer_id"].min()) > 800  # numbered from a random offset, not 801, 802, ...

    report = json.loads((out / "report.json").read_text())
    treated = {c["name"]: c["treatment"] for c in report["columns"]}
    assert treated["phone"].startswith("generated: valid phone numbers")
    assert "why: phone (personal data): header 'phone' means a phone number" in treated["phone"]
    assert "why: name (personal data): header 'holder'" in treated["holder"]
    assert treated["spend"] and not treated["spend"].startswith("generated")  # modelled
    assert treated["card_number"].startswith("generated: Luhn-valid card numbers")
    assert treated["zip"].startswith("generated: codes in a seed shape")
    graded = {r["column"]: r for r in report["tabular"]["identifiers"]}
    assert set(graded) == {"customer_id", "holder", "email", "phone", "card_number", "birth_date", "zip"}
    assert all(r["leaked"] == 0.0 for r in graded.values()) and graded["card_number"]["well_formed"] == 1.0
    leak = report["tabular"]["value_leak_excess"]
    rows = {r["column"]: r for r in leak["detail"]["columns"]}
    assert set(rows) == {"plan", "spend", "churned"}  # the modelled columns, each beside the holdout's share
    assert rows["spend"]["high_cardinality"] and not rows["plan"]["high_cardinality"]  # 54 % zeros, amounts gated
    # the default codec draws amounts within pieces of ten seed rows: few are a training amount to the cent (with
    # `cell_values: seed` every non-zero one was, excess .45), and the starter's gate passes
    gate = {g["gate"]: g for g in report["gates"]}["max_value_leak_excess"]
    assert gate["passed"] and rows["spend"]["excess"] < 0.1

    private = out.with_name(out.name + ".private")  # the model is private (engine/workspace.py)
    assert not (private / "model" / "generated.json").read_text().count("digest")


def test_the_starter_gate_fails_a_column_shuffled_on_its_own():
    from synthforge.engine.starter import DEFAULT_GATES
    from synthforge.quality.value_leak import column_leak

    seed = customers(1000, seed=3)
    train, holdout = seed["spend"].iloc[:800], seed["spend"].iloc[800:]
    shuffled = train.sample(frac=1, random_state=0)  # no row copied, every amount a training amount
    assert column_leak(train, shuffled, holdout)["excess"] > 2 * DEFAULT_GATES["max_value_leak_excess"]
