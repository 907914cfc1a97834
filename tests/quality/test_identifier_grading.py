"""Ids and names are graded for what they are: left out of fidelity as sdmetrics does, checked for format and leaks."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from synthforge.cli import main


def _people(frame: pd.DataFrame, seed: int, first_id: int) -> pd.DataFrame:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    out = frame.reset_index(drop=True).copy()
    out.insert(0, "subject_id", np.arange(first_id, first_id + len(out)))
    out.insert(1, "first_name", [fake.first_name() for _ in range(len(out))])
    out.insert(2, "last_name", [fake.last_name() for _ in range(len(out))])
    return out


def test_report_grades_names_and_ids_apart_and_agrees_with_sdmetrics(tmp_path, credit):
    real = _people(credit.iloc[:400], 0, 1)
    rng = np.random.default_rng(3)
    synthetic = credit.iloc[400:].sample(400, replace=True, random_state=1).reset_index(drop=True)
    synthetic["Income"] = synthetic["Income"] * rng.uniform(0.8, 1.2, len(synthetic))  # not a copy of real rows
    synthetic = _people(synthetic, 1, 5000)
    synthetic.loc[:9, "first_name"] = real.loc[:9, "first_name"].to_numpy()  # a few common names recur
    real.to_csv(tmp_path / "real.csv", index=False)
    synthetic.to_csv(tmp_path / "syn.csv", index=False)
    assert main(["report", "--real", str(tmp_path / "real.csv"), "--synthetic", str(tmp_path / "syn.csv"),
                 "--out", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    tab = report["tabular"]
    graded = {r["column"]: r for r in tab["identifiers"]}
    assert set(graded) == {"subject_id", "first_name", "last_name"}
    assert graded["subject_id"]["treated_as"] == "id" and graded["subject_id"]["leaked"] == 0.0
    assert graded["subject_id"]["unique"] == 1.0 and graded["first_name"]["well_formed"] == 1.0
    assert graded["first_name"]["leaked"] > 0  # the planted recurring names are counted
    assert not {"subject_id", "first_name", "last_name"} & set(tab["compared"])
    assert "Ids and personal data" in (tmp_path / "rep" / "report.html").read_text()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport
        from sdv.metadata import Metadata
        metadata = Metadata.detect_from_dataframes({"t": pd.read_csv(tmp_path / "real.csv")})
        sd = QualityReport()
        sd.generate(pd.read_csv(tmp_path / "real.csv"), pd.read_csv(tmp_path / "syn.csv"),
                    metadata.to_dict()["tables"]["t"], verbose=False)
    props = sd.get_properties().set_index("Property")["Score"]
    assert tab["column_shapes"]["value"] == pytest.approx(props["Column Shapes"], abs=0.01)
    assert tab["pair_trends"]["value"] == pytest.approx(props["Column Pair Trends"], abs=0.01)
