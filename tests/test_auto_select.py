"""`family: auto` fits the candidates within the time budget and keeps the best on validation rows carved from the
training rows (never the holdout the report grades on)."""

import json

from conftest import write_recipe
from synthforge.cli import main


def test_auto_scores_candidates_on_validation_rows_and_explains_choice(tmp_path, credit_csv):
    recipe = write_recipe(tmp_path, credit_csv, generator={"family": "auto", "time_budget": 60,
                                                           "candidates": ["gaussian_copula", "autoregressive"]})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    selection = report["selection"]
    # ours first (permissive), then SDV's
    assert [c["family"] for c in selection] == ["autoregressive", "gaussian_copula"]
    assert [c["licence"] for c in selection] == ["permissive", "BSL-1.1"]
    chosen = [c for c in selection if c["chosen"]]
    assert len(chosen) == 1 and "highest validation score" in chosen[0]["why"]
    # 600 seed rows, 120 held out for the report, 96 of the other 480 carved out to choose on
    assert report["run"]["seed_rows_holdout"] == 120
    assert "96 validation rows carved from the 480 training rows" in chosen[0]["why"]
    for c in selection:
        assert 0 < c["score"] <= 1 and c["fit_seconds"] > 0
        assert 0 <= c["validation_detection_auc"] <= 1 and 0 < c["validation_fidelity"] <= 1
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


def test_auto_with_nothing_left_to_fit_is_one_line_exit_2(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv, generator={"family": "auto", "candidates": ["ctgan", "tvae"],
                                                           "time_budget": 10})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: generator.time_budget:") and "\n" not in err and "Traceback" not in err
