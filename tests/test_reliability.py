"""Every bad input a user can give gets exit 2, one line naming the culprit and the fix, no traceback, and no output
folder that looks finished. Inputs synthforge can reasonably take (an id-like column, a constant column, ...) are
handled, and the run says what it did in one `warning:` line each.

Most cases run in-process through `main` (what `python -m synthforge.cli` calls); the cases that need a real
process (file permissions, the end-to-end "no traceback" check) run one.
"""

import ctypes
import json
import os
import socket
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import write_recipe
from synthforge.cli import main
from synthforge.engine.pipeline import read_output
from synthforge.engine.workspace import is_complete

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(credit) -> pd.DataFrame:
    """300 rows of credit_data: enough for gaussian_copula and the holdout."""
    return credit.iloc[:300].reset_index(drop=True)


@pytest.fixture(scope="module")
def narrow(small) -> pd.DataFrame:
    """Five of its columns, for the cases that run end to end (fewer columns to fit, grade and plot)."""
    return small[["Status", "Seniority", "Home", "Age", "Income"]].copy()


def _csv(folder: Path, df: pd.DataFrame, name: str = "seed.csv") -> Path:
    path = folder / name
    df.to_csv(path, index=False)
    return path


def _run(capsys, recipe: Path, out: Path | None = None, *extra: str) -> tuple[int, list[str]]:
    args = ["run", str(recipe), "-q", *extra] + (["--out", str(out)] if out is not None else [])
    code = main(args)
    captured = capsys.readouterr()
    return code, [ln for ln in captured.err.splitlines() if ln.strip()]


def _refused(code: int, lines: list[str], *needles: str) -> str:
    """Exit 2, exactly one line, `error: ...` naming every needle, no traceback."""
    assert code == 2, lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in line, line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def _nothing_finished(folder: Path, out: Path) -> None:
    """No folder that looks like a finished dataset, and no half-run left behind for a refused input."""
    assert not out.exists() or not is_complete(out)
    assert not out.with_name(out.name + ".partial").exists()
    assert not any(p.name.endswith(".partial") for p in folder.iterdir())


def _handled(code: int, lines: list[str], out: Path, *warnings: str) -> pd.DataFrame:
    assert code == 0, lines
    assert is_complete(out)
    for w in warnings:
        assert any(ln.startswith("warning: ") and w in ln for ln in lines), (w, lines)
    assert not any("Traceback" in ln for ln in lines)
    return read_output(out)


# ---------------------------------------------------------------------------------------------------- seed file

def test_seed_missing(tmp_path, capsys):
    recipe = write_recipe(tmp_path, Path("nope.csv"))
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "seed.source: file not found", str(tmp_path / "nope.csv"), "recipe's folder")
    _nothing_finished(tmp_path, tmp_path / "out")


def _drop_dac_override():  # runs in the child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _cli_obeying_permissions(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a real process for which file modes apply: as root (CI containers), without the capabilities
    that let root read and write anything."""
    kwargs = {}
    if os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_drop_dac_override, check=True)
        except (subprocess.SubprocessError, OSError):
            pytest.skip("running as root without CAP_SETPCAP: cannot make a file unreadable to this test")
        kwargs["preexec_fn"] = _drop_dac_override
    return subprocess.run([sys.executable, "-m", "synthforge.cli", *args], capture_output=True, text=True,
                          timeout=180, cwd=ROOT, **kwargs)


def test_seed_unreadable(tmp_path, small):
    seed = _csv(tmp_path, small)
    recipe = write_recipe(tmp_path, seed)
    seed.chmod(0)
    try:
        proc = _cli_obeying_permissions("run", str(recipe), "--out", str(tmp_path / "out"), "-q")
    finally:
        seed.chmod(0o644)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    _refused(proc.returncode, lines, f"seed.source: {seed} cannot be read (permission denied)")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_empty_file(tmp_path, capsys):
    seed = tmp_path / "seed.csv"
    seed.write_bytes(b"")
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    _refused(code, lines, f"seed.source: {seed} is empty (0 bytes)", "header row")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_blank_lines_only(tmp_path, capsys):
    seed = tmp_path / "seed.csv"
    seed.write_text("\n\n\n")
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    _refused(code, lines, f"seed.source: {seed} is empty")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_header_only(tmp_path, small, capsys):
    seed = tmp_path / "seed.csv"
    seed.write_text(",".join(small.columns) + "\n")
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    _refused(code, lines, f"seed.source: {seed} has a header but no rows", "add data rows")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_one_row(tmp_path, small, capsys):
    code, lines = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, small.iloc[:1])), tmp_path / "out")
    _refused(code, lines, "seed.source: 1 rows is too few", "at least 10 rows")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_not_utf8(tmp_path, small, capsys):
    df = small.copy()
    df.loc[4, "Home"] = "propriété"
    seed = tmp_path / "seed.csv"
    df.to_csv(seed, index=False, encoding="latin-1")
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    # data row 5 is line 6 of the file; 0xe9 is latin-1's é
    _refused(code, lines, f"seed.source: {seed} is not UTF-8 text (line 6, byte", ": 0xe9)", "re-save it as UTF-8")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_binary_file(tmp_path, capsys):
    seed = tmp_path / "seed.csv"
    seed.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    _refused(code, lines, f"seed.source: {seed} is a binary file, not CSV text")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_parquet_under_csv_name(tmp_path, small, capsys):
    seed = tmp_path / "seed.csv"
    small.to_parquet(seed)
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    _refused(code, lines, f"seed.source: {seed} is a Parquet file", "set seed.format: parquet")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_excel_file(tmp_path, capsys):
    import zipfile

    seed = tmp_path / "seed.csv"
    with zipfile.ZipFile(seed, "w") as z:  # an .xlsx is a zip archive
        z.writestr("xl/workbook.xml", "<workbook/>")
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    _refused(code, lines, "seed.source:", "zip archive (an Excel .xlsx?)", "export the sheet as CSV")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_ragged_rows(tmp_path, small, capsys):
    seed = tmp_path / "seed.csv"
    text = small.to_csv(index=False).splitlines()
    text[5] += ",1,2,3"
    seed.write_text("\n".join(text) + "\n")
    code, lines = _run(capsys, write_recipe(tmp_path, seed), tmp_path / "out")
    _refused(code, lines, f"seed.source: {seed} is not readable as csv", "line 6")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_seed_with_semicolons_is_read(tmp_path, narrow, capsys):
    seed = tmp_path / "seed.csv"
    narrow.to_csv(seed, index=False, sep=";")
    out = tmp_path / "out"
    df = _handled(*_run(capsys, write_recipe(tmp_path, seed, output__rows=100), out), out)
    assert list(df.columns) == list(narrow.columns) and len(df) == 100


# ---------------------------------------------------------------------------------------------------- columns

def test_column_entirely_null_is_left_out(tmp_path, narrow, capsys):
    df = narrow.assign(Empty=np.nan)
    out = tmp_path / "out"
    syn = _handled(*_run(capsys, write_recipe(tmp_path, _csv(tmp_path, df), output__rows=100), out), out,
                   "column 'Empty' left out: every value is missing")
    assert "Empty" not in syn.columns and len(syn) == 100
    assert "column 'Empty' left out: every value is missing" in json.loads((out / "report.json").read_text())["notes"]


def test_every_column_null(tmp_path, capsys):
    df = pd.DataFrame({"a": [np.nan] * 50, "b": [None] * 50})
    code, lines = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, df), seed__target=None), tmp_path / "out")
    _refused(code, lines, "seed.source: no column of seed.csv can be modelled", "'a' left out: every value is missing")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_constant_column_is_kept_constant(tmp_path, narrow, capsys):
    df = narrow.assign(Branch="north", Fee=7)
    out = tmp_path / "out"
    syn = _handled(*_run(capsys, write_recipe(tmp_path, _csv(tmp_path, df), output__rows=100), out), out,
                   "column 'Branch': constant: every row has 'north'", "column 'Fee': constant: every row has 7")
    assert set(syn["Branch"]) == {"north"} and set(syn["Fee"]) == {7}


def test_id_like_categorical_column_is_generated_not_copied(tmp_path, narrow, capsys):
    df = narrow.assign(Code=[f"C{(i * 7919) % 100003:06d}" for i in range(len(narrow))])  # distinct, not a sequence
    out = tmp_path / "out"
    syn = _handled(*_run(capsys, write_recipe(tmp_path, _csv(tmp_path, df), output__rows=100), out), out,
                   "column 'Code' generated, not learned (100% of values distinct (id-like))")
    assert syn["Code"].is_unique and syn["Code"].str.fullmatch(r"C\d{6}").all()
    assert not syn["Code"].isin(df["Code"]).any()
    profile = json.loads((out / "profile.json").read_text())
    assert {c["name"]: (c["kind"], c["generated"]) for c in profile["columns"]}["Code"] == ("id", "id")


def test_id_like_target_is_refused(tmp_path, small, capsys):
    df = small.assign(Status=[f"S{i:05d}" for i in range(len(small))])
    code, lines = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, df)), tmp_path / "out")
    _refused(code, lines, "seed.target: column 'Status' cannot be modelled", "id-like")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_mixed_types_mostly_numbers(tmp_path, narrow, capsys):
    df = narrow.astype({"Income": object})
    df.loc[[3, 50, 77], "Income"] = "unknown"
    out = tmp_path / "out"
    syn = _handled(*_run(capsys, write_recipe(tmp_path, _csv(tmp_path, df), output__rows=100), out), out,
                   "column 'Income': mixes numbers and text: 3 of", "e.g. 'unknown' in data row 4",
                   "set seed.columns.Income: categorical")
    assert pd.api.types.is_numeric_dtype(syn["Income"]) and "unknown" not in set(syn["Income"].astype(str))


def test_mixed_types_override_that_cannot_hold(tmp_path, small, capsys):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), seed__columns={"Home": "numerical"})
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "seed.columns.Home: 'numerical', but no value is a number", "use categorical")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_mixed_types_in_jsonl_and_nested_values(tmp_path, narrow, capsys):
    df = narrow.copy()
    df["Mixed"] = pd.Series([i if i % 3 else f"s{i}" for i in range(len(df))], dtype=object)
    df["Tags"] = [[i, "a"] if i % 2 else {"k": i} for i in range(len(df))]
    seed = tmp_path / "seed.jsonl"
    df.to_json(seed, orient="records", lines=True)
    out = tmp_path / "out"
    syn = _handled(*_run(capsys, write_recipe(tmp_path, seed, output__rows=100), out), out,
                   "column 'Tags' left out: holds nested lists or objects",
                   "column 'Mixed' generated, not learned (100% of values distinct (id-like))")
    assert "Tags" not in syn.columns and len(syn) == 100 and syn["Mixed"].is_unique


def test_infinite_numbers_read_as_missing(tmp_path, narrow, capsys):
    df = narrow.astype({"Income": float})
    df.loc[::30, "Income"] = np.inf
    out = tmp_path / "out"
    syn = _handled(*_run(capsys, write_recipe(tmp_path, _csv(tmp_path, df), output__rows=100), out), out,
                   "column 'Income': 10 infinite values read as missing")
    assert np.isfinite(syn["Income"].dropna()).all()


def test_primary_key_with_repeats(tmp_path, small, capsys):
    code, lines = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, small.dropna(subset=["Home"])),
                                            seed__primary_key="Home"), tmp_path / "out")
    _refused(code, lines, "seed.primary_key: column 'Home' repeats values", "must be unique")
    _nothing_finished(tmp_path, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------- recipe

def _recipe_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_recipe_not_yaml(tmp_path, capsys):
    recipe = _recipe_text(tmp_path, "name: [x\nseed: {source: a.csv\n")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, f"recipe {recipe}: line 2 not valid YAML")


def test_recipe_impossible_date_value(tmp_path, capsys):
    recipe = _recipe_text(tmp_path, "name: t\nvertical: 2001-02-30\nseed: {source: a.csv}\n")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, f"recipe {recipe}: not valid YAML (day is out of range for month)", "quote the value")


def test_recipe_is_a_list(tmp_path, capsys):
    recipe = _recipe_text(tmp_path, "- name: t\n- seed: a.csv\n")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, f"{recipe}: expected a mapping of recipe keys at the top level, got list")


def test_recipe_empty(tmp_path, capsys):
    recipe = _recipe_text(tmp_path, "# nothing yet\n")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "expected a mapping of recipe keys at the top level, got NoneType")


def test_recipe_unknown_key(tmp_path, small, capsys):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), generator__familly="ctgan")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "generator.familly: unknown key")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_recipe_misspelled_family(tmp_path, small, capsys):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), generator__family="ctgann")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "generator.family: 'ctgann' is not one of auto, ", " ctgan,", " gaussian_copula,")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_recipe_wrong_type(tmp_path, small, capsys):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), output__rows="many")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "output.rows:", "valid integer", "'many'")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_generator_param_wrong_type(tmp_path, small, capsys):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), generator__family="ctgan",
                          generator__params={"epochs": "ten"})
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "generator.params.epochs: expected a whole number > 0 (default 300), got 'ten'")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_ctgan_batch_size_not_divisible_by_pac(tmp_path, small, capsys):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), generator__family="ctgan",
                          generator__params={"batch_size": 25, "epochs": 1})
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "generator.params.batch_size: ctgan needs an even batch_size divisible by pac (10); got 25")
    _nothing_finished(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("rows", [0, -5])
def test_rows_zero_or_negative(tmp_path, small, capsys, rows):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), output__rows=rows)
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "output.rows:", "greater than 0", f"(got {rows})")
    # the same through --rows
    code, lines = _run(capsys, write_recipe(tmp_path, tmp_path / "seed.csv"), tmp_path / "out", "--rows", str(rows))
    _refused(code, lines, "output.rows:", f"(got {rows})")
    _nothing_finished(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("budget,needle", [(0, "greater than 0"), (-1, "greater than 0"),
                                           (1e12, "less than or equal to 604800")])
def test_time_budget_zero_or_absurd(tmp_path, small, capsys, budget, needle):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), generator__time_budget=budget)
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "generator.time_budget:", needle)
    _nothing_finished(tmp_path, tmp_path / "out")


def test_target_not_in_data(tmp_path, small, capsys):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), seed__target="Sttaus")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "seed.target: column 'Sttaus' is not in the seed data; columns are Status, Seniority")
    _nothing_finished(tmp_path, tmp_path / "out")


def test_example_that_does_not_exist(tmp_path, capsys):
    recipe = write_recipe(tmp_path, "example://credit_dat")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "seed.source: no example named 'credit_dat'; did you mean example://credit_data?")
    _nothing_finished(tmp_path, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------- output

def test_output_path_is_a_file(tmp_path, small, capsys):
    target = tmp_path / "out"
    target.write_text("not a folder")
    code, lines = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, small)), target)
    _refused(code, lines, f"output.folder: {target} is a file")
    assert target.read_text() == "not a folder"


def test_output_parent_is_a_file(tmp_path, small, capsys):
    (tmp_path / "afile").write_text("x")
    code, lines = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, small)), tmp_path / "afile" / "out")
    _refused(code, lines, "output.folder: a parent of", "is a file")


def test_output_folder_without_write_permission(tmp_path, small):
    locked = tmp_path / "locked"
    locked.mkdir()
    recipe = write_recipe(tmp_path, _csv(tmp_path, small))
    locked.chmod(0o500)
    try:
        proc = _cli_obeying_permissions("run", str(recipe), "--out", str(locked / "out"), "-q")
    finally:
        locked.chmod(0o755)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    _refused(proc.returncode, lines, f"output.folder: cannot write in {locked} (permission denied)")
    assert list(locked.iterdir()) == []


def _small_file_limit():
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as a full disk would
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_disk_error_while_writing_is_one_line_and_the_run_resumes(tmp_path, small):
    recipe = write_recipe(tmp_path, _csv(tmp_path, small))
    out = tmp_path / "out"
    args = [sys.executable, "-m", "synthforge.cli", "run", str(recipe), "--out", str(out), "-q"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=ROOT, preexec_fn=_small_file_limit)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    line = _refused(proc.returncode, lines, "error: File too large: ")
    assert str(out.with_name("out.partial")) in line  # names the file it could not write
    assert not out.exists() and out.with_name("out.partial").is_dir()
    proc = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0 and is_complete(out), proc.stderr


def test_overwrite_never_replaces_a_folder_of_the_users(tmp_path, narrow, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    recipe = write_recipe(tmp_path, _csv(tmp_path, narrow), output__rows=50)
    code, lines = _run(capsys, recipe, mine, "--overwrite")
    _refused(code, lines, f"output.folder: {mine} holds files that are not a synthforge output", "--out")
    assert (mine / "thesis.docx").read_text() == "years of work"
    assert not (tmp_path / "mine.partial").exists()


def test_error_after_fitting_leaves_nothing_that_looks_finished(tmp_path, narrow, capsys):
    """An expectation no row can meet is found only after fitting: the output is not finished, the .partial is not
    complete, and the fixed recipe is told exactly what to do with the leftover."""
    seed = _csv(tmp_path, narrow)
    impossible = [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "Age", "min_value": 1000}}]
    out = tmp_path / "out"
    code, lines = _run(capsys, write_recipe(tmp_path, seed, output__rows=50, quality__expectations=impossible,
                                            quality__max_rounds=1), out)
    _refused(code, lines, "quality.expectations: no synthetic row passed validation",
             "expect_column_values_to_be_between(Age)")
    assert not out.exists() and not is_complete(tmp_path / "out.partial")
    code, lines = _run(capsys, write_recipe(tmp_path, seed, output__rows=50), out)
    _refused(code, lines, f"an unfinished run of a different recipe or seed is in {out}.partial",
             "--overwrite to discard it")
    code, lines = _run(capsys, write_recipe(tmp_path, seed, output__rows=50), out, "--overwrite")
    assert code == 0 and is_complete(out) and len(read_output(out)) == 50


def test_partial_left_before_fitting_is_started_again(tmp_path, narrow, capsys):
    """A run killed before it fitted anything leaves nothing worth --resume: the next run just starts again."""
    out = tmp_path / "out"
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "state.json").write_text('{"recipe_sha256": "an older recipe"}')
    (partial / "profile.json").write_text("{}")
    code, _ = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, narrow), output__rows=50), out)
    assert code == 0 and is_complete(out) and not partial.exists()


def test_partial_folder_not_made_by_synthforge_is_refused(tmp_path, narrow, capsys):
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "notes.txt").write_text("mine")
    recipe = write_recipe(tmp_path, _csv(tmp_path, narrow), output__rows=50)
    code, lines = _run(capsys, recipe, tmp_path / "out", "--overwrite")
    _refused(code, lines, f"output.folder: {partial} exists but was not made by synthforge")
    assert (partial / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------------------- atomic output

def test_every_output_file_is_renamed_into_place(tmp_path, narrow, capsys, monkeypatch):
    """Each file of a finished output was written under a temporary name and renamed (itself, or the folder that
    holds it); the manifest says complete; nothing temporary or internal is left."""
    renamed: list[Path] = []
    real_replace = os.replace

    def recording_replace(src, dst, *a, **k):
        renamed.append(Path(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", recording_replace)
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, _csv(tmp_path, narrow), output__rows=120, execution__shard_rows=50)
    code, _ = _run(capsys, recipe, out)
    assert code == 0
    work = out.resolve().with_name("out.partial")
    inside = [p for p in renamed if work in p.parents]  # leave out the final swap of the whole folder
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for f in files:
        as_written = work / f.relative_to(out)
        assert any(p == as_written or p in as_written.parents for p in inside), f"{f} was not renamed into place"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["rows"] == 120 and manifest["shards"] == 3
    assert renamed.index(work / "manifest.json") > max(renamed.index(work / "report.json"),
                                                       renamed.index(work / "data" / "part-00002.parquet"))
    assert not [p for p in files if p.name.startswith(".") or p.name == "state.json"]
    assert sorted(p.name for p in (out / "data").iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]


def test_folder_without_complete_manifest_is_not_finished(tmp_path, narrow, capsys):
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, _csv(tmp_path, narrow), output__rows=50)
    assert _run(capsys, recipe, out)[0] == 0 and is_complete(out)
    manifest = out / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"complete": true', '"complete": false'))
    assert not is_complete(out)
    # --resume does not take an incomplete folder for a finished one: it runs again and completes it
    code, _ = _run(capsys, recipe, out, "--resume")
    assert code == 0 and is_complete(out)
    code, lines = _run(capsys, recipe, out, "--resume")
    _refused(code, lines, f"output.folder: {out} is already complete; nothing to resume")


# ---------------------------------------------------------------------------------------------------- security

def test_yaml_tags_never_run_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    recipe = _recipe_text(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n"
                                    "seed: {source: a.csv}\n")
    code, lines = _run(capsys, recipe, tmp_path / "out")
    _refused(code, lines, "not valid YAML", "python/object/apply:os.system")
    assert not marker.exists()


def test_run_needs_no_network(tmp_path, narrow, capsys, monkeypatch):
    """A whole run with every internet socket refused: synthforge reaches no network unless a recipe asks."""
    tried = []

    def refuse(self, address, *a, **k):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            tried.append(address)
            raise OSError("network disabled by the test")
        return real_connect(self, address, *a, **k)

    def no_lookup(*a, **k):
        tried.append(a)
        raise OSError("name lookup disabled by the test")

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    out = tmp_path / "out"
    code, _ = _run(capsys, write_recipe(tmp_path, _csv(tmp_path, narrow), output__rows=50), out)
    assert code == 0 and is_complete(out)
    assert tried == []


def test_no_unsafe_loader_in_the_code():
    """Recipes are parsed with yaml.safe_load only; torch loads tensors only; the one unpickling call (SDV's model)
    is behind `trusted`; trust_remote_code is never switched on in code."""
    sources = {p: p.read_text() for p in (ROOT / "synthforge").rglob("*.py")}
    for path, text in sources.items():
        assert "yaml.load(" not in text and "yaml.unsafe_load" not in text and "yaml.Loader" not in text, path
        assert "pickle.load" not in text and "dill.load" not in text and "joblib.load" not in text, path
        for call in text.split("torch.load(")[1:]:  # tensors only: weights_only refuses pickled objects
            assert "weights_only=True" in call.split(")\n")[0], path
        assert "trust_remote_code=True" not in text, path  # only ever the recipe's own (default false) setting
    loaders = [p for p, t in sources.items() if "load_synthesizer(" in t]
    assert [p.name for p in loaders] == ["sdv_tabular.py"]
    text = sources[loaders[0]]
    assert "if not trusted:" in text.split("load_synthesizer(")[0].rsplit("def load", 1)[1]


def test_model_pickle_is_not_loaded_without_trust(tmp_path):
    from synthforge.errors import UserError
    from synthforge.families.sdv_tabular import SDVGenerator

    (tmp_path / "synthesizer.pkl").write_bytes(b"\x80\x04K\x01.")
    (tmp_path / "generator.json").write_text("{}")
    with pytest.raises(UserError, match="pickles, which can run code"):
        SDVGenerator.load(tmp_path)


def test_validate_refuses_the_same_inputs(tmp_path, small, capsys):
    df = small.copy()
    df.loc[4, "Home"] = "propriété"
    seed = tmp_path / "seed.csv"
    df.to_csv(seed, index=False, encoding="latin-1")
    assert main(["validate", str(write_recipe(tmp_path, seed))]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    recipe = write_recipe(tmp_path, _csv(tmp_path, small), seed__columns={"Home": "boolean"})
    assert main(["validate", str(recipe)]) == 2
    assert "seed.columns.Home: 'boolean', but" in capsys.readouterr().err
    # yaml dumps the recipe file the CLI reads: nothing here is code
    assert yaml.safe_load(recipe.read_text())["seed"]["columns"] == {"Home": "boolean"}
