"""`family: auto` fits the candidates that fit in the time budget and keeps the best on the real holdout."""

import json

from conftest import write_recipe
from synthforge.cli import main


def test_auto_scores_candidates_and_explains_choice(tmp_path, credit_csv):
    recipe = write_recipe(tmp_path, credit_csv, generator={"family": "auto", "candidates": ["gaussian_copula", "tvae"],
                                                           "time_budget": 45})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 0
    selection = json.loads((out / "report.json").read_text())["selection"]
    assert [c["family"] for c in selection] == ["gaussian_copula", "tvae"]
    chosen = [c for c in selection if c["chosen"]]
    assert len(chosen) == 1 and "highest fidelity against the real holdout" in chosen[0]["why"]
    for c in selection:
        assert 0 < c["score"] <= 1 and c["fit_seconds"] > 0
    tvae = selection[1]
    assert tvae["epochs"] >= 1
    assert json.loads((out / "manifest.json").read_text())["family"] == chosen[0]["family"]


def test_auto_skips_neural_candidates_without_budget(tmp_path, credit_csv):
    recipe = write_recipe(tmp_path, credit_csv, generator={"family": "auto", "candidates": ["ctgan", "gaussian_copula"],
                                                           "time_budget": 5})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 0
    selection = {c["family"]: c for c in json.loads((out / "report.json").read_text())["selection"]}
    assert selection["gaussian_copula"]["chosen"]
    assert selection["ctgan"]["score"] is None and selection["ctgan"]["why"].startswith("skipped")
    assert "skipped" in (out / "report.html").read_text()
