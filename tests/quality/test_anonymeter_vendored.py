"""anonymeter's three risks in every tabular report of a plain install (issue 32): the vendored copy
(synthforge/quality/vendor/anonymeter) computes them without the `anonymeter` package, and its numpy neighbour
search (which replaced numba) finds what anonymeter's own distance says."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthforge.cli import main
# evaluators first: anonymeter's own import order (neighbors first is a circular import, upstream too)
from synthforge.quality.vendor.anonymeter import evaluators  # noqa: F401
from synthforge.quality.vendor.anonymeter.neighbors.mixed_types_kneighbors import _nearest_neighbors, gower_distance

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
RISKS = ("singling_out_risk", "linkability_risk", "inference_risk")


def test_numpy_neighbour_search_matches_the_pairwise_gower_distance():
    rng = np.random.default_rng(0)
    # three numbers in [0, 1] (as mixed_types_transform scales them), two label-encoded categories, some missing;
    # few category levels and coarse numbers make ties
    def draw(n):
        x = np.c_[rng.integers(0, 5, (n, 3)) / 4, rng.integers(0, 3, (n, 2))].astype(float)
        x[rng.random(x.shape) < 0.1] = np.nan
        return x

    queries, candidates = draw(40), draw(300)
    idx, dist = _nearest_neighbors(queries, candidates, cat_cols_index=3, n_neighbors=4)
    for i, q in enumerate(queries):
        brute = np.array([gower_distance(q, c, 3) for c in candidates])
        expected = np.sort(brute)[:4]  # NaN (a number missing on one side) sorts last, as in numba's argsort
        np.testing.assert_allclose(dist[i], expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(brute[idx[i]], dist[i], rtol=0, atol=1e-12)
        assert idx[i][0] == np.flatnonzero(brute == expected[0])[0]  # a tie goes to the lower index


def _split(credit: pd.DataFrame):
    # eight of the 14 columns: half the report's plots, well under 20 s for both reports
    credit = credit[["Status", "Seniority", "Home", "Time", "Age", "Marital", "Job", "Income"]]
    order = np.random.default_rng(0).permutation(len(credit))
    return [credit.iloc[order[a:b]].reset_index(drop=True) for a, b in ((0, 300), (300, 450), (450, 600))]


def test_a_plain_install_reports_the_three_risks_and_a_copy_scores_above_fresh_rows(tmp_path, credit, monkeypatch):
    # what a plain `pip install -e .` has: no `anonymeter` package (the shared venv's --no-deps copy is hidden)
    monkeypatch.setitem(sys.modules, "anonymeter", None)
    train, hold, fresh = _split(credit)
    for name, frame in (("train", train), ("hold", hold), ("fresh", fresh)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    gate = yaml.safe_load((RECIPES / "credit_tabular.yaml").read_text())["quality"]["gates"]["max_inference_risk"]
    reports, codes = {}, {}
    for case, synthetic in (("copies", "train"), ("fresh", "fresh")):
        codes[case] = main(["report", "--real", str(tmp_path / "train.csv"), "--synthetic",
                            str(tmp_path / f"{synthetic}.csv"), "--holdout", str(tmp_path / "hold.csv"),
                            "--target", "Status", "--out", str(tmp_path / case), "--gate",
                            f"max_inference_risk={gate}"])
        reports[case] = json.loads((tmp_path / case / "report.json").read_text())
    for case, report in reports.items():
        tab = report["tabular"]
        assert not [n for n in report.get("notes", []) + tab.get("notes", []) if "anonymeter" in n], case
        for risk in RISKS:
            m = tab[risk]
            assert 0 <= m["value"] <= 1, (case, risk, m["value"])
            for rate in ("attack_rate", "baseline_rate", "control_rate"):
                assert 0 <= m["detail"][rate] <= 1, (case, risk, rate)
            low, high = m["detail"]["ci95"]
            assert 0 <= low <= m["value"] <= high <= 1, (case, risk)
            assert m["computed_on"]["control"] == "holdout"
        assert "Status" in tab["inference_risk"]["detail"]["secrets"]
    copies, honest = reports["copies"]["tabular"], reports["fresh"]["tabular"]
    assert copies["inference_risk"]["value"] > 0.8 > honest["inference_risk"]["value"] + 0.5
    assert copies["linkability_risk"]["value"] > 0.8 > honest["linkability_risk"]["value"] + 0.5
    # copies have the naive baseline far below the attack; fresh rows' attack sits at the control's rate
    assert copies["inference_risk"]["detail"]["attack_rate"] > copies["inference_risk"]["detail"]["baseline_rate"]
    assert codes == {"copies": 1, "fresh": 0}
    by_gate = {c: {g["gate"]: g["passed"] for g in r["gates"]} for c, r in reports.items()}
    assert by_gate == {"copies": {"max_inference_risk": False}, "fresh": {"max_inference_risk": True}}
    assert "anonymeter" not in sys.modules or sys.modules["anonymeter"] is None


@pytest.mark.parametrize("recipe", ["credit_tabular.yaml", "health_insurance.yaml"])
def test_the_table_recipes_gate_the_inference_risk(recipe):
    gates = yaml.safe_load((RECIPES / recipe).read_text())["quality"]["gates"]
    assert gates["max_inference_risk"] == 0.3  # docs/privacy.md: the default ≤ 0.10, copies ≥ 0.88
