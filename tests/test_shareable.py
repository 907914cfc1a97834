"""The folder a user hands on holds no seed value (issue 32 item 2): every file under a run's shareable folder is
searched for every distinct value of the seed's high-cardinality columns (tests/shareable_scan.py says exactly how:
more than 50 distinct values or more than half distinct; strings as words, numbers as numbers of at least 3
significant digits, dates in ISO form), and none is found. The fitted model, the exact suite and the exact profile
are in the private folder beside it, where the same search does find seed values (so the search is not blind).

Left out on purpose: the values of the data files' *modelled* columns. A model that re-emits seed values of a
high-cardinality column is what the value-leak gate (issue 32 item 1, another engineer's) measures; so is the
format of generated ids and personal data (families/identifiers.py). The data files are still searched: their
Parquet metadata, their column names, and every column that is not modelled (relational keys).

Measured when this test was written (600 credit_data rows, autoregressive; flights cut to 30 planes): the shareable
folder outside the data held 242 distinct seed values of the credit table (model/codec.json 188, model/generator.json
48, expectations/suite.json 3, profile.json 3) and 2,269 of the flights tables (codecs, suites with every
destination airport, report category labels); now 0 and 0.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shareable_scan import scan_folder
from synthforge.api import run
from synthforge.engine.pipeline import prepare
from synthforge.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def _modelled(folder: Path) -> set[str]:
    """The columns the model produced (not generated, not left out), from the private exact profile."""
    profile = json.loads((folder / "profile.json").read_text())
    return {c["name"] for c in profile["columns"] if not c.get("generated") and not c.get("dropped")}


def test_shareable_table_run_holds_no_seed_value(tmp_path, credit, credit_csv):
    recipe = {"name": "t", "random_seed": 3, "seed": {"source": str(credit_csv), "target": "Status"},
              "generator": {"family": "autoregressive", "time_budget": 10, "params": {"max_epochs": 8}},
              "output": {"rows": 200}, "quality": {"metric_rows": 1000}}
    result = run(recipe, out=tmp_path / "out")
    out, private = result.folder, tmp_path / "out.private"
    assert result.manifest["files"]["private"] == str(private.resolve())
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert not any(n.startswith(("model", "private", "checkpoints")) for n in names), names
    hits = scan_folder(out, credit, skip_data_columns=_modelled(private),
                       own_paths=(str(credit_csv), str(credit_csv.resolve()), str(tmp_path), str(tmp_path.resolve())))
    assert hits == [], hits[:20]
    # the private folder holds what was taken out, and the same search sees it there
    assert (private / "model" / "codec.json").exists() and (private / "expectations" / "suite.json").exists()
    found = {f for f, _, _ in scan_folder(private, credit)}
    assert {"model/codec.json", "expectations/suite.json", "profile.json"} <= found
    # the shareable suite and profile still say something: bounds (rounded outward), low-cardinality categories
    suite = json.loads((out / "expectations" / "suite.json").read_text())
    between = {e["kwargs"]["column"]: e["kwargs"] for e in suite["expectations"]
               if e["type"] == "expect_column_values_to_be_between"}
    assert between["Price"]["min_value"] <= credit["Price"].min() and between["Price"]["max_value"] >= credit[
        "Price"].max()
    in_set = {e["kwargs"]["column"]: set(e["kwargs"]["value_set"]) for e in suite["expectations"]
              if e["type"] == "expect_column_values_to_be_in_set"}
    assert in_set["Status"] == {"good", "bad"}


@pytest.mark.slow
def test_shareable_relational_run_holds_no_seed_value(tmp_path):
    """The shipped flights recipe cut to 30 planes and their flights (about a minute of CPU), private folder off."""
    recipe = yaml.safe_load((ROOT / "recipes" / "flights_relational.yaml").read_text())
    recipe["seed"]["tables"]["planes"].update(max_rows=30, drop=["speed"])
    recipe["seed"]["tables"]["flights"]["orphans"] = "drop"
    recipe["generator"]["time_budget"] = 10
    recipe["output"] = {"rows": 30, "keep_private": False}
    recipe["quality"] = {"metric_rows": 2000}
    path = tmp_path / "flights.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = run(path, out=tmp_path / "out").folder
    assert not (tmp_path / "out.private").exists()  # output.keep_private: false: no model kept anywhere
    parsed = load_recipe(path)
    _, seed = prepare(parsed, tmp_path)
    tables = {n: pd.concat([seed.train[n], seed.holdout[n]]) for n in seed.train}
    train = seed.train
    joined = train["flights"].merge(train["planes"].add_prefix("planes."), left_on="tailnum",
                                    right_on="planes.tailnum", how="left")  # what the report grades as one table
    keys = {"tailnum"}
    modelled = {c for f in tables.values() for c in f.columns} - keys
    hits = scan_folder(out, list(tables.values()), skip_data_columns=modelled, released=[joined, *train.values()],
                       own_paths=(str(tmp_path), str(tmp_path.resolve())))
    assert hits == [], hits[:20]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["credit_tabular", "health_insurance"])
def test_every_shipped_table_recipes_shareable_run_holds_no_seed_value(tmp_path, name):
    """Each shipped table recipe from its own file (its seed, split, identifiers and gates), the model shortened to a
    few epochs and 300 rows: no seed value of a high-cardinality column in any shareable file."""
    recipe = yaml.safe_load((ROOT / "recipes" / f"{name}.yaml").read_text())
    recipe["generator"].update(family="autoregressive", time_budget=20, params={"max_epochs": 4})
    recipe["output"] = {"rows": 300}
    recipe["quality"]["gates"] = {}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = run(path, out=tmp_path / "out").folder
    _, seed = prepare(load_recipe(path), tmp_path)
    table = pd.concat([seed.train, seed.holdout])
    hits = scan_folder(out, table, skip_data_columns=_modelled(tmp_path / "out.private"),
                       own_paths=(str(tmp_path), str(tmp_path.resolve())))
    assert hits == [], hits[:20]
    assert scan_folder(tmp_path / "out.private", table) or name == "health_insurance"  # no high-cardinality column


def test_shareable_suite_and_profile_rules():
    """The rule itself, on a frame built to hit each branch: bounds outward, a rare category drops the whole set, a
    user's own expectation is kept as written, a profile warning loses its example value."""
    from synthforge.data.profile import Profile
    from synthforge.engine.modalities.tabular import shareable_profile
    from synthforge.quality import expectations as ex

    assert [ex.outward(18424, True), ex.outward(1169, False), ex.outward(0.0137, False), ex.outward(-3.71, False)] \
        == [19000.0, 1100.0, 0.013, -3.8]
    frame = pd.DataFrame({"amount": [1169.0 + 7 * i for i in range(60)],
                          "plan": ["basic"] * 30 + ["gold"] * 29 + ["diamond"],  # one rare value
                          "tier": ["a", "b", "c"] * 20,
                          "when": ["2020-01-0" + str(1 + i % 9) for i in range(59)] + ["not a date"]})
    user = (("expect_column_values_to_be_between", {"column": "amount", "min_value": 1169.0}),)
    exact = ex.suite_json(ex.build_suite("s", {"amount": "numerical", "plan": "categorical", "tier": "categorical"},
                                         frame, user=user))
    shared = ex.shareable_suite(exact, frame, user)
    kinds = [(e["type"], e["kwargs"].get("column")) for e in shared["expectations"]]
    assert ("expect_column_values_to_be_in_set", "plan") not in kinds  # 'diamond' is seen once: the set goes
    sets = {e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in shared["expectations"]
            if e["type"] == "expect_column_values_to_be_in_set"}
    assert sets == {"tier": ["a", "b", "c"]}
    bounds = [e["kwargs"] for e in shared["expectations"] if e["type"] == "expect_column_values_to_be_between"]
    assert {"column": "amount", "min_value": 1100.0, "max_value": 1600.0} in bounds  # derived: 1169 .. 1582
    assert {"column": "amount", "min_value": 1169.0} in bounds  # the user's own, as written
    assert shared["meta"]["synthforge"]["left_out"] == 1
    profile = Profile.from_frame(frame)
    cols = {c["name"]: c for c in shareable_profile(profile, frame)["columns"]}
    assert (cols["amount"]["minimum"], cols["amount"]["maximum"]) == (1100.0, 1600.0)
    assert "not a date" not in json.dumps(cols) and "1169" not in json.dumps(cols)
