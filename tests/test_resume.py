"""Interruption: real `python -m synthforge.cli run` processes killed (SIGKILL) or interrupted (SIGINT) at several
points, then continued with `--resume`. The finished dataset must have exactly the requested rows, one part per
shard, none written twice, and be the same rows an uninterrupted run writes; a neural family must reuse its saved
model instead of fitting again.

The kill points are found by watching the `.partial` folder (profile.json is written just before fitting, parts
one per shard), with timeouts, so the tests do not depend on how fast this machine is.
"""

import hashlib
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from conftest import write_recipe
from synthforge.cli import main
from synthforge.engine.pipeline import read_output
from synthforge.engine.workspace import is_complete

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "synthforge.cli"]


def _ctrl_c_default() -> None:
    """In the child before it starts: Ctrl-C as a terminal delivers it. A test suite started in the background by a
    non-interactive shell (`pytest &`) inherits SIGINT ignored, and so would every run it starts, which then
    rightly never sees the SIGINT these tests send."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path: Path, args: list[str], name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.stderr"
    with open(log, "w") as err:  # a file, not a pipe: a chatty run can never block on a full pipe
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=err, text=True, cwd=ROOT,
                                preexec_fn=_ctrl_c_default)
    return proc, log


def _wait_for(proc: subprocess.Popen, log: Path, ready, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-2000:]}")
        time.sleep(0.01)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def _parts(folder: Path) -> list[Path]:
    return sorted((folder / "data").glob("part-*.parquet"))


def _unfinished(out: Path) -> Path:
    """After a kill: no output folder, a .partial that is not complete, every part on disk readable and with its
    stats beside it (readers of the folder never see half a part)."""
    partial = out.with_name(out.name + ".partial")
    assert not out.exists() and partial.is_dir() and not is_complete(partial)
    for part in _parts(partial):
        assert (partial / "shards" / f"{part.stem}.json").exists(), part
    if _parts(partial):
        assert len(pd.read_parquet(partial / "data")) == sum(len(pd.read_parquet(p)) for p in _parts(partial))
    return partial


def _finished(out: Path, rows: int, shards: int) -> pd.DataFrame:
    assert is_complete(out) and not out.with_name(out.name + ".partial").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == rows and manifest["shards"] == shards
    names = [p.name for p in _parts(out)]
    assert names == [f"part-{i:05d}.parquet" for i in range(shards)]  # one per shard, none twice
    assert sorted(p.name for p in (out / "data").iterdir()) == names  # no leftovers beside them
    assert len(pd.read_parquet(out / "data")) == rows
    return read_output(out)


def _stamp(paths: list[Path]) -> dict[str, tuple[int, str]]:
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths}


def test_interrupted_then_killed_run_resumes_to_the_rows_of_an_uninterrupted_run(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv, output__rows=300, execution__shard_rows=50)  # 6 parts
    reference = tmp_path / "reference"
    assert main(["run", str(recipe), "--out", str(reference), "-q"]) == 0
    out = tmp_path / "out"
    partial = out.with_name("out.partial")
    args = ["run", str(recipe), "--out", str(out), "--rows", "300", "-q"]

    # 1: Ctrl-C after two committed parts: exit 130 and one line saying how to go on
    proc, log = _start(tmp_path, args, "interrupted")
    _wait_for(proc, log, lambda: len(_parts(partial)) >= 2, "two parts")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    prefix = "interrupted; continue with: "
    assert lines[0].startswith(prefix)
    again = shlex.split(lines[0].removeprefix(prefix))
    assert again[:3] == ["synthforge", "run", str(recipe)] and "--resume" in again
    assert again[again.index("--out") + 1] == str(out) and again[again.index("--rows") + 1] == "300"
    _unfinished(out)
    # an unfinished run is never silently restarted, nor continued by another recipe
    capsys.readouterr()
    assert main(args) == 2
    assert f"an unfinished run is in {partial}; pass --resume" in capsys.readouterr().err
    assert main(["run", str(recipe), "--out", str(out), "--rows", "200", "--resume", "-q"]) == 2
    assert f"the unfinished run in {partial} was made by a different recipe" in capsys.readouterr().err

    # 1b: SIGTERM (kill, a scheduler, a container stop) after three parts: the same line, exit 143
    proc, log = _start(tmp_path, again[1:], "terminated")
    _wait_for(proc, log, lambda: len(_parts(partial)) >= 3, "three parts")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    last = log.read_text().strip().splitlines()[-1]  # the printed command has no -q: progress lines come first
    assert last.startswith(prefix) and shlex.split(last.removeprefix(prefix)) == again, last
    _unfinished(out)

    # 2: the command it printed, SIGKILL-ed after four parts
    proc, log = _start(tmp_path, again[1:], "killed")
    _wait_for(proc, log, lambda: len(_parts(partial)) >= 4, "four parts")
    _kill(proc)
    _unfinished(out)
    before = _stamp(_parts(partial))
    assert len(before) >= 4

    # 3: and again to the end
    proc, log = _start(tmp_path, again[1:], "last")
    assert proc.wait(timeout=300) == 0, log.read_text()
    df = _finished(out, rows=300, shards=6)
    after = _stamp(_parts(out))
    assert all(after[name] == stamp for name, stamp in before.items())  # committed parts were kept, not redone
    pd.testing.assert_frame_equal(df, read_output(reference))


def test_killed_neural_run_reuses_its_saved_model(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv, generator__family="ctgan", generator__params={"epochs": 30},
                          output__rows=200, execution__shard_rows=50, execution__threads=1)  # 4 parts
    out = tmp_path / "out"
    partial = out.with_name("out.partial")
    model = partial / "private" / "model"  # the model is private: built in the .partial's private part
    args = ["run", str(recipe), "--out", str(out)]
    import torch  # noqa: F401  (the in-process run below must reach the folder within the child's fit)
    from synthforge.families.sdv_tabular import synthesizer_class

    synthesizer_class("ctgan")

    # 1: during training (profile.json is written just before the fit; the model only after it)
    proc, log = _start(tmp_path, args, "first")
    _wait_for(proc, log, lambda: (partial / "profile.json").exists(), "training to start")
    capsys.readouterr()
    assert main([*args, "-q", "--resume"]) == 2  # a second run on the same folder is refused while one writes it
    assert f"another synthforge run is writing {partial}" in capsys.readouterr().err
    assert not (model / "generator.json").exists()
    _kill(proc)
    _unfinished(out)
    assert not (model / "generator.json").exists()

    # 2: the resumed run fits (nothing was saved), saves the model, then is killed during generation
    proc, log = _start(tmp_path, [*args, "--resume"], "second")
    _wait_for(proc, log, lambda: len(_parts(partial)) >= 2, "two parts")
    _kill(proc)
    _unfinished(out)
    assert "fitting ctgan" in log.read_text()
    saved = _stamp([model / "synthesizer.pkl", model / "generator.json"])
    parts = _stamp(_parts(partial))

    # 3: continues with the saved model and the committed parts
    proc, log = _start(tmp_path, [*args, "--resume"], "last")
    assert proc.wait(timeout=300) == 0, log.read_text()
    text = log.read_text()
    assert "resuming with the model already fitted in this run" in text and "fitting ctgan" not in text
    df = _finished(out, rows=200, shards=4)
    private = out.with_name("out.private")  # moved out of the shareable folder at commit
    assert not (out / "model").exists()
    assert _stamp([private / "model" / "synthesizer.pkl", private / "model" / "generator.json"]) == saved
    after = _stamp(_parts(out))
    assert all(after[name] == stamp for name, stamp in parts.items())
    assert json.loads((out / "manifest.json").read_text())["family"] == "ctgan"
    assert df["Status"].isin(["good", "bad"]).all()


def test_a_run_fitted_and_generated_in_one_folder_is_graded_by_resume_in_another(tmp_path, credit_csv):
    """benchmarks/text_gpu.py's path: every stage but grading (`fit_and_generate`) on one machine, the `.partial`
    folder moved, `resume` grades it elsewhere: the same rows as a run straight through, nothing fitted again."""
    import shutil

    from synthforge.api import run
    from synthforge.engine import pipeline as pl
    from synthforge.engine import workspace as wsp
    from synthforge.engine.manifest import Timings
    from synthforge.recipe import load_recipe

    recipe_path = write_recipe(tmp_path, credit_csv, output__rows=120, execution__shard_rows=60)
    straight = run(recipe_path, out=tmp_path / "straight")
    recipe = load_recipe(recipe_path)
    modality, seed = pl.prepare(recipe, tmp_path)
    ws = wsp.open_run(recipe, seed.sha256, tmp_path / "there" / "run", overwrite=False, resume=False,
                      base_dir=tmp_path)
    _, device = pl.torch_setup(recipe)
    pl.fit_and_generate(modality, recipe, seed, device, ws, Timings(), Console(quiet=True))
    wsp.release_locks()
    assert not (tmp_path / "there" / "run").exists() and len(_parts(ws.work)) == 2
    (tmp_path / "here").mkdir()
    shutil.move(ws.work, tmp_path / "here" / "run.partial")
    model = _stamp([tmp_path / "here" / "run.partial" / "private" / "model" / "generator.json"])

    graded = run(recipe_path, out=tmp_path / "here" / "run", resume=True)
    pd.testing.assert_frame_equal(graded.data(), straight.data())
    # loaded, not fitted again; committed to the private folder beside the output
    assert _stamp([tmp_path / "here" / "run.private" / "model" / "generator.json"]) == model
    assert graded.manifest["rows"] == 120 and graded.report.metrics()["detection_auc"].value is not None
