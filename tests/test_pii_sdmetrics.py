"""`synthforge report` on tables with ids and personal data agrees with sdmetrics' QualityReport: ids and personal data
are left out of column shapes and pair trends as sdmetrics leaves out SDV's id and PII sdtypes."""

import json
import warnings

import numpy as np
import pandas as pd

from synthforge.cli import main


def visits(n, rng, subjects) -> pd.DataFrame:
    """A subject's visits: an integer subject_id that repeats, made-up lower case names, a few measurements."""
    letters = list("abcdefghijklmnopqrstuvwxyz")
    first = np.array(["".join(rng.choice(letters, 6)) for _ in subjects])
    last = np.array(["".join(rng.choice(letters, 8)) for _ in subjects])
    sid = np.sort(rng.choice(subjects, n))
    at = np.searchsorted(subjects, sid)
    age = rng.integers(20, 90, len(subjects))[at]
    bp = np.round(100 + 0.5 * age + rng.normal(0, 10, n), 1)
    return pd.DataFrame({"subject_id": sid, "fake_first_name": first[at], "fake_last_name": last[at], "age": age,
                         "systolic": bp, "ward": rng.choice(["A", "B", "C", "D"], n),
                         "readmitted": rng.random(n) < 0.2 + (bp > 150) * 0.3})


def _sdmetrics(real, synthetic, update=None) -> dict:
    from sdmetrics.reports.single_table import QualityReport
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({"t": real}).to_dict()["tables"]["t"]
    for col, sdtype in (update or {}).items():
        metadata["columns"][col] = {"sdtype": sdtype}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.generate(real, synthetic, metadata, verbose=False)
    return report.get_properties().set_index("Property")["Score"].to_dict()


def _report(tmp_path, real, synthetic) -> dict:
    paths = [tmp_path / "real.csv", tmp_path / "synthetic.csv"]
    real.to_csv(paths[0], index=False)
    synthetic.to_csv(paths[1], index=False)
    assert main(["report", "--real", str(paths[0]), "--synthetic", str(paths[1]), "--out", str(tmp_path / "r")]) == 0
    return json.loads((tmp_path / "r" / "report.json").read_text())["tabular"]


def test_repeating_subject_ids_and_made_up_names_graded_as_sdmetrics_does(tmp_path):
    real = visits(1500, np.random.default_rng(0), np.arange(10000, 10300))
    synthetic = visits(1500, np.random.default_rng(1), np.arange(20000, 20300))
    synthetic["systolic"] += np.random.default_rng(2).normal(0, 8, len(synthetic))
    ours = _report(tmp_path, real, synthetic)
    theirs = _sdmetrics(real, synthetic)
    assert {r["column"] for r in ours["identifiers"]} == {"subject_id", "fake_first_name", "fake_last_name"}
    assert abs(ours["column_shapes"]["value"] - theirs["Column Shapes"]) < 0.01
    assert abs(ours["pair_trends"]["value"] - theirs["Column Pair Trends"]) < 0.01


def test_customers_graded_as_sdmetrics_does_once_its_metadata_marks_the_same_personal_data(tmp_path):
    """SDV's header rules miss `phone`, `card_number`, `zip` and `holder` (it knows phone_number, credit_card_number,
    zipcode, first_name): with those marked as PII in its metadata too, the scores agree."""
    from test_pii_customers import customers

    real, synthetic = customers(400, seed=7), customers(400, seed=8)
    ours = _report(tmp_path, real, synthetic)
    pii = {"holder": "name", "phone": "phone_number", "card_number": "credit_card_number", "zip": "postcode",
           "birth_date": "date_of_birth"}
    theirs = _sdmetrics(real, synthetic, update=pii)
    assert set(ours["compared"]) == {"plan", "spend", "churned"}
    assert any("'card_number' graded as card number" in n and "Luhn" in n for n in ours["notes"])
    assert abs(ours["column_shapes"]["value"] - theirs["Column Shapes"]) < 0.01
    if theirs.get("Column Pair Trends") is not None and not np.isnan(theirs["Column Pair Trends"]):
        assert ours["pair_trends"]["value"] is None or \
            abs(ours["pair_trends"]["value"] - theirs["Column Pair Trends"]) < 0.01
