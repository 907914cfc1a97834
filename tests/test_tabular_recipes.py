"""The shipped table recipes as a user runs them: each passes its own gates (slow: 1-3 minutes each on 2 cores)."""

import json
import os
import time
from pathlib import Path

import pytest

from synthforge.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, tmp_path: Path) -> tuple[int, dict, float]:
    started = time.perf_counter()
    code = main(["run", str(ROOT / "recipes" / f"{name}.yaml"), "--out", str(tmp_path / name), "--quiet"])
    wall = time.perf_counter() - started
    return code, json.loads((tmp_path / name / "report.json").read_text()), wall


@pytest.mark.slow
def test_credit_recipe_passes_in_about_two_minutes(tmp_path):
    code, report, wall = _run("credit_tabular", tmp_path)
    assert code == 0, report["gates"]
    assert report["tabular"]["detection_auc"]["value"] <= 0.90
    assert wall <= 150, f"took {wall:.0f}s (load {os.getloadavg()})"


@pytest.mark.slow
def test_health_insurance_recipe_passes_with_the_holdouts_copy_rate_beside(tmp_path):
    code, report, _ = _run("health_insurance", tmp_path)
    assert code == 0, report["gates"]
    copies = report["tabular"]["exact_copy_share"]
    assert copies["detail"]["holdout_share"] > 0.05  # ten categorical columns: honest rows repeat
    assert report["tabular"]["exact_copy_excess"]["value"] <= 0.01
