"""A differentially private run's shareable folder holds nothing computed from the raw rows (issue 32 item 5): only
the synthetic rows, the suite and profile built from the DP codec's released statistics, the synthetic rows'
validation against that suite, the recipe and a manifest less what was read from the rows. The report (graded on
the raw rows), the full manifest and the exact profile are in the private folder.

The seed has planted values that anything computed from the raw rows would show: an extreme maximum and minimum of
two significant digits (the non-DP shareable rule rounds bounds outward to two digits, so it would print them as
they are), a category held by one row, and an exact number held by one row. None is in any file of the shareable
folder; the private folder's report and exact profile hold them (so the search is not blind).
"""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthforge.api import run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOP, BOTTOM, RARE = 990000.0, -73000.0, 271.828  # income's maximum, balance's minimum, one rate
SINGLETON = "Zanzibar7"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _seed(n=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "segment": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]).astype(object),
        "income": np.round(rng.gamma(3, 9000, n), 2),
        "balance": np.round(rng.normal(2000, 800, n), 2),
        "rate": np.round(rng.normal(12, 3, n), 3),
        "churned": rng.random(n) < 0.3,
    })
    df.loc[0, "income"], df.loc[1, "balance"], df.loc[2, "rate"], df.loc[3, "segment"] = TOP, BOTTOM, RARE, SINGLETON
    return df


def _numbers(text: str) -> set[float]:
    return {float(t) for t in _NUMBER.findall(text)}


def _planted_in(folder: Path) -> dict[str, list[str]]:
    """file → the planted values found in it: numbers compared as numbers in text files, the category as a string
    in any file (Parquet included)."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        hits = [SINGLETON] if SINGLETON.encode() in raw else []
        if path.suffix in (".json", ".html", ".yaml"):
            numbers = _numbers(raw.decode("utf-8", errors="replace"))
            hits += [str(v) for v in (TOP, BOTTOM, RARE) if v in numbers]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def _recipe(csv: Path, dp: bool) -> dict:
    params = {"dp": {"epsilon": 3.0, "epochs": 2}, "batch_size": 128} if dp else {"max_epochs": 4}
    return {"name": "t", "random_seed": 3, "seed": {"source": str(csv), "target": "churned"},
            "generator": {"family": "autoregressive", "time_budget": 10, "params": params},
            "output": {"rows": 150}, "quality": {"metric_rows": 400}}


def test_dp_shareable_folder_holds_nothing_computed_from_the_rows(tmp_path):
    csv = tmp_path / "seed.csv"
    _seed().to_csv(csv, index=False)
    result = run(_recipe(csv, dp=True), out=tmp_path / "out")
    out, private = result.folder, tmp_path / "out.private"

    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert not [n for n in names if n.startswith(("report", "model", "private", "checkpoints"))], names
    assert {"manifest.json", "recipe.yaml", "profile.json", "expectations/suite.json",
            "expectations/result.json"} <= set(names)
    assert _planted_in(out) == {}

    # the private folder has the report and the full manifest, and the same search finds the planted values there
    assert (private / "report.html").is_file() and (private / "report.json").is_file()
    found = _planted_in(private)
    assert {str(TOP), str(BOTTOM), SINGLETON} <= set(found.get("profile.json", [])), found
    assert result.report_html() == (private / "report.html").read_text(encoding="utf-8")

    # the shareable manifest: what ε covers, which folder holds what, and nothing read from the rows
    shared = json.loads((out / "manifest.json").read_text())
    full = json.loads((private / "manifest.json").read_text())
    assert shared["complete"] is True and shared["status"] == "withheld" and full["status"] == result.status
    assert "sha256" not in shared["seed"] and full["seed"]["sha256"] == result.manifest["seed"]["sha256"]
    assert full["seed"]["sha256"] not in (out / "manifest.json").read_text()
    assert shared["recipe_sha256"] != full["recipe_sha256"]
    assert "covered by ε" in shared["files"]["shareable_holds"] and "report" in shared["files"]["private_holds"]
    assert shared["differential_privacy"]["shareable_folder"] and shared["differential_privacy"]["epsilon"] <= 3.0001

    # suite and profile come from the DP codec: the same suite in both folders; every bound a point of the public
    # grid, so never the planted extremes; the singleton category never in a set
    suite = json.loads((out / "expectations" / "suite.json").read_text())
    assert suite == json.loads((private / "expectations" / "suite.json").read_text())
    between = {e["kwargs"]["column"]: e["kwargs"] for e in suite["expectations"]
               if e["type"] == "expect_column_values_to_be_between"}
    assert set(between) == {"income", "balance", "rate"}
    in_set = {e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in suite["expectations"]
              if e["type"] == "expect_column_values_to_be_in_set"}
    assert SINGLETON not in in_set.get("segment", []) and set(in_set.get("segment", [])) <= {"north", "south", "east"}
    profile = {c["name"]: c for c in json.loads((out / "profile.json").read_text())["columns"]}
    assert profile["income"]["maximum"] == between["income"]["max_value"]
    assert "null_fraction" not in profile["income"] and "distinct" not in profile["segment"]


def test_the_planted_values_are_found_in_a_non_dp_shareable_folder(tmp_path):
    """The same seed without DP: the shareable rule (bounds rounded outward to two digits) prints the planted
    extremes, and the report is in the shareable folder; so the DP test's search could fail."""
    csv = tmp_path / "seed.csv"
    _seed().to_csv(csv, index=False)
    out = run(_recipe(csv, dp=False), out=tmp_path / "out").folder
    assert (out / "report.html").is_file()
    found = _planted_in(out)
    assert str(TOP) in found.get("expectations/suite.json", []) and str(BOTTOM) in found.get("profile.json", [])
    assert json.loads((out / "manifest.json").read_text())["status"] != "withheld"
