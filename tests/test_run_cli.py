"""The CLI end to end on a small real table (600 rows of credit_data), in-process through `main`."""

import json
from pathlib import Path
import subprocess
import sys

import pandas as pd
import pytest

from conftest import write_recipe
from synthforge.cli import main
from synthforge.engine.pipeline import read_output
from synthforge.sinks.files import read_parquet_metadata


def test_run_writes_complete_folder(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv, quality__gates={"min_quality": 0.5})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    for name in ("report.html", "report.json", "manifest.json", "profile.json", "recipe.yaml",
                 "expectations/suite.json", "expectations/result.json"):
        assert (out / name).exists(), name
    # the fitted model and the exact suite and profile: only in the private folder beside it
    private = tmp_path / "out.private"
    assert not (out / "model").exists() and not (out / "private").exists()
    for name in ("model/generator.json", "expectations/suite.json", "profile.json", "private.json"):
        assert (private / name).exists(), name
    assert not (tmp_path / "out.partial").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["private"] == str(private.resolve()) and manifest["trust_remote_code"] is False
    assert manifest["complete"] is True and manifest["status"] == "passed"
    assert len(manifest["seed"]["sha256"]) == 64 and manifest["rows"] == 300
    assert set(manifest["timings"]) >= {"load", "fit", "generate", "evaluate"}
    df = read_output(out)
    assert len(df) == 300 and "Status" in df.columns
    # every row passed the derived suite: categories seen in the seed, numbers inside the seed's range
    seed = pd.read_csv(credit_csv)
    assert set(df["Status"]) <= set(seed["Status"])
    assert df["Age"].between(seed["Age"].min(), seed["Age"].max()).all()
    report = json.loads((out / "report.json").read_text())
    assert 0 < report["tabular"]["overall"]["value"] <= 1


def test_parquet_roundtrip_keeps_types_and_metadata(tmp_path, credit_csv):
    recipe = write_recipe(tmp_path, credit_csv)
    out = tmp_path / "o"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 0
    part = next((out / "data").glob("part-*.parquet"))
    meta = read_parquet_metadata(part)
    assert meta["recipe"] == "t" and meta["random_seed"] == "3" and meta["family"] == "gaussian_copula"
    df = pd.read_parquet(out / "data")
    assert df["Age"].dtype.kind in "iuf" and df["Status"].dtype == object


def test_same_random_seed_same_rows(tmp_path, credit_csv):
    recipe = write_recipe(tmp_path, credit_csv)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(recipe), "--out", str(a), "-q"]) == 0
    assert main(["run", str(recipe), "--out", str(b), "-q"]) == 0
    pd.testing.assert_frame_equal(read_output(a), read_output(b))
    other = write_recipe(tmp_path, credit_csv, random_seed=4)
    c = tmp_path / "c"
    assert main(["run", str(other), "--out", str(c), "-q"]) == 0
    assert not read_output(a).equals(read_output(c))


def test_failed_gate_exits_1_and_keeps_marked_output(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv, quality__gates={"min_quality": 0.999})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 1
    assert "min_quality" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["failing_gates"][0]["gate"] == "min_quality"
    html = (out / "report.html").read_text()
    assert "min_quality" in html and "fail" in html.lower()


def test_existing_output_needs_overwrite(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", str(recipe), "--out", str(out), "-q", "--overwrite"]) == 0
    assert (out / "manifest.json").exists()


def test_conditions_balance_target(tmp_path, credit_csv):
    recipe = write_recipe(tmp_path, credit_csv, output__conditions={"column": "Status", "balance": True})
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 0
    counts = read_output(out)["Status"].value_counts()
    assert counts.to_dict() == {"good": 150, "bad": 150}


def test_bad_recipe_exits_2_with_one_line(tmp_path, credit_csv):
    recipe = write_recipe(tmp_path, credit_csv, generator={"family": "ctgann"})
    proc = subprocess.run([sys.executable, "-m", "synthforge.cli", "run", str(recipe)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "generator.family: 'ctgann' is not one of" in lines[0]
    assert "Traceback" not in proc.stderr


def test_target_not_in_data(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv, seed__target="Sttaus")
    assert main(["run", str(recipe), "-q"]) == 2
    assert "seed.target: column 'Sttaus' is not in the seed data" in capsys.readouterr().err


def test_validate_init_recipes_commands(tmp_path, credit_csv, capsys, monkeypatch):
    recipe = write_recipe(tmp_path, credit_csv)
    assert main(["validate", str(recipe)]) == 0
    assert "Status: categorical" in capsys.readouterr().out
    starter = tmp_path / "starter.yaml"
    assert main(["init", str(credit_csv), "--vertical", "healthcare", "--out", str(starter)]) == 0
    text = starter.read_text()
    assert "target: Status" in text and "max_dcr_share: 0.55" in text
    assert main(["validate", str(starter)]) == 0
    assert main(["init", str(credit_csv), "--vertical", "astrology", "--out", str(tmp_path / "x.yaml")]) == 2
    monkeypatch.chdir(Path(__file__).parents[1])
    assert main(["recipes"]) == 0
    assert "credit_tabular" in capsys.readouterr().out


def test_report_command_on_any_pair(tmp_path, credit, capsys):
    real, holdout = credit.iloc[:400], credit.iloc[400:]
    synthetic = credit.sample(frac=1.0, random_state=0).iloc[:300]
    paths = {}
    for name, df in (("real.csv", real), ("holdout.parquet", holdout), ("syn.parquet", synthetic)):
        paths[name] = tmp_path / name
        df.to_csv(paths[name], index=False) if name.endswith(".csv") else df.to_parquet(paths[name])
    out = tmp_path / "rep"
    code = main(["report", "--real", str(paths["real.csv"]), "--synthetic", str(paths["syn.parquet"]),
                 "--holdout", str(paths["holdout.parquet"]), "--target", "Status", "--out", str(out),
                 "--gate", "max_exact_copies=0.0"])
    # a third of the "synthetic" rows are copies of real rows: the gate must catch them
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    assert report["tabular"]["exact_copy_share"]["value"] > 0.3
    assert main(["report", "--real", str(paths["real.csv"]), "--synthetic", str(tmp_path / "missing.csv"),
                 "--out", str(tmp_path / "r2")]) == 2


def test_report_overwrite_never_deletes_a_users_folder(tmp_path, credit):
    real, syn = tmp_path / "real.csv", tmp_path / "syn.csv"
    credit.iloc[:300].to_csv(real, index=False)
    credit.iloc[300:].to_csv(syn, index=False)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.docx").write_text("a user's document")
    args = ["report", "--real", str(real), "--synthetic", str(syn)]
    assert main(args + ["--out", str(folder), "--overwrite"]) == 2
    assert (folder / "thesis.docx").read_text() == "a user's document"
    partial = tmp_path / "rep.partial"
    partial.mkdir()
    (partial / "notes.txt").write_text("keep")
    assert main(args + ["--out", str(tmp_path / "rep")]) == 2
    assert (partial / "notes.txt").exists()
    (partial / "notes.txt").unlink()
    assert main(args + ["--out", str(tmp_path / "rep")]) == 0  # an empty leftover .partial is the report's own
    assert main(args + ["--out", str(tmp_path / "rep"), "--overwrite"]) == 0  # a report folder may be replaced


def test_augment_balances_target(credit):
    import synthforge

    more = synthforge.augment(credit, n=200, target="Status", balance=True, random_seed=1)
    assert len(more) == 200
    assert more["Status"].value_counts().to_dict() == {"good": 100, "bad": 100}


def test_api_run_returns_result(tmp_path, credit_csv):
    import synthforge

    recipe = write_recipe(tmp_path, credit_csv)
    result = synthforge.run(recipe, out=tmp_path / "api", **{"output.rows": 120})
    assert result.passed and len(result.data()) == 120
    assert result.report.tabular.column_shapes.value > 0.5


def test_the_cli_answers_in_well_under_a_second_without_heavy_imports(tmp_path):
    """--help, --version and a recipe with an unknown key never import torch, pandas, SDV, GE, ... (measured: 0.4 s
    to import synthforge.cli; each command 0.6-1.0 s on a loaded 2-core machine). The time bound is generous for CI;
    the import check is the exact one."""
    import time

    heavy = ("torch", "pandas", "sklearn", "sdv", "great_expectations", "transformers", "diffusers", "ray",
             "matplotlib", "scipy")
    probe = (f"import sys, synthforge.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodality: tabular\nseed: {source: x.csv}\ngenerator: {famly: auto}\n")
    for args, code in ((["--help"], 0), (["--version"], 0), (["validate", str(bad)], 2)):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "synthforge.cli", *args], capture_output=True, text=True)
        wall = time.perf_counter() - started
        assert done.returncode == code, done.stderr
        assert wall < 3.0, f"{args}: {wall:.1f}s"
    assert "generator.famly: unknown key; did you mean 'family'?" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_torch_threads_sleep_while_they_wait_unless_the_user_says_otherwise(given, expected):
    """synthforge is imported before torch on every CLI run, so torch's OpenMP threads start with the policy it sets
    (spinning threads doubled a step's CPU seconds beside another job); a user's own OMP_WAIT_POLICY is kept."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, synthforge.cli, torch; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_private_folder_is_placed_or_left_out_and_overwrite_replaces_it(tmp_path, credit_csv, capsys):
    """--private-out puts the model elsewhere; --no-model keeps none; the shareable folder is the same either way;
    an existing private folder needs --overwrite like the output."""
    recipe = write_recipe(tmp_path, credit_csv)
    elsewhere = tmp_path / "vault" / "t-model"
    assert main(["run", str(recipe), "--out", str(tmp_path / "a"), "--private-out", str(elsewhere), "-q"]) == 0
    assert (elsewhere / "model" / "generator.json").exists() and not (tmp_path / "a.private").exists()
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["files"]["private"] == str(elsewhere)
    assert main(["run", str(recipe), "--out", str(tmp_path / "b"), "--no-model", "-q"]) == 0
    assert not (tmp_path / "b.private").exists() and not (tmp_path / "b" / "model").exists()
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["files"]["private"] is None
    pd.testing.assert_frame_equal(read_output(tmp_path / "a"), read_output(tmp_path / "b"))
    # a private folder left by an earlier run is replaced only with --overwrite
    assert main(["run", str(recipe), "--out", str(tmp_path / "c"), "--private-out", str(elsewhere), "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    stamp = (elsewhere / "model" / "generator.json").stat().st_mtime_ns
    assert main(["run", str(recipe), "--out", str(tmp_path / "c"), "--private-out", str(elsewhere), "--overwrite",
                 "-q"]) == 0
    assert (elsewhere / "model" / "generator.json").stat().st_mtime_ns != stamp
    assert not list(tmp_path.glob("**/*.old*"))
