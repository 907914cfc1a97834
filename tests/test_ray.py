"""The Ray executor against a real local Ray (no mocks): it writes the same rows as the local executor, and a run
stopped after some shards resumes without redoing or duplicating a committed shard.

One Ray for the module (`ray.init(num_cpus=2)`, its session folder under a temporary directory removed at the end);
the runs go through the CLI in this process, so `run_ray` finds that Ray already initialised.
"""

import _thread
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_recipe
from synthforge.cli import main
from synthforge.engine.pipeline import read_output
from synthforge.sinks.files import read_parquet_metadata

ray = pytest.importorskip("ray")

ROWS, SHARD_ROWS = 1800, 150
SHARDS = ROWS // SHARD_ROWS  # 12
RAY_TEMP: list[Path] = []  # the module's Ray session folder (logs, spilled objects)


@pytest.fixture(scope="module")
def ray_address():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    assert not ray.is_initialized()
    temp = tempfile.mkdtemp(prefix="sf-ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    RAY_TEMP.append(Path(temp))
    try:
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="ERROR", log_to_driver=False)
        # the workers import SDV and GE (seconds) while this process runs the local reference
        _warm = [ray.remote(num_cpus=1)(_import_heavy).remote() for _ in range(2)]
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def _import_heavy() -> None:
    import great_expectations  # noqa: F401
    import sdv.single_table  # noqa: F401

    import synthforge.engine.ray_executor  # noqa: F401


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, credit) -> Path:
    folder = tmp_path_factory.mktemp("ray")
    credit.to_csv(folder / "credit.csv", index=False)
    return write_recipe(folder, folder / "credit.csv", output__rows=ROWS, execution__shard_rows=SHARD_ROWS)


@pytest.fixture(scope="module")
def local_out(recipe) -> Path:
    out = recipe.parent / "local"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 0
    return out


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "data").glob("part-*.parquet"))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "data").glob(".*"))


def test_unreachable_address_is_one_clear_error(tmp_path, monkeypatch):
    from synthforge.engine.ray_executor import run_ray
    from synthforge.engine.shards import plan_shards
    from synthforge.errors import UserError

    if ray.is_initialized():
        pytest.skip("needs this process without Ray (runs first in this module)")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    started = time.monotonic()
    with pytest.raises(UserError, match="nothing answers at 127.0.0.1:1"):
        run_ray("tabular", tmp_path / "model", None, plan_shards(10, 10, 0), tmp_path, 1, {}, address="127.0.0.1:1")
    assert time.monotonic() - started < 10 and not ray.is_initialized()


def test_unreachable_address_fails_before_fitting(tmp_path, recipe, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "out"
    started = time.monotonic()
    code = main(["run", str(recipe), "--out", str(out), "--executor", "ray", "--ray-address", "127.0.0.1:1", "-q"])
    assert code == 2 and "execution.ray_address: nothing answers at 127.0.0.1:1" in capsys.readouterr().err
    assert time.monotonic() - started < 30  # Ray's own connect retries for minutes
    # the workspace opens before fitting: no .partial means nothing was fitted or written
    assert not out.exists() and not out.with_name("out.partial").exists()


def test_ray_writes_the_same_rows_as_local(ray_address, recipe, local_out):
    out = recipe.parent / "ray"
    assert main(["run", str(recipe), "--out", str(out), "-q", "--executor", "ray"]) == 0
    assert parts(out) == parts(local_out) == [f"part-{i:05d}.parquet" for i in range(SHARDS)]
    assert hidden(out) == []  # no pending part left behind
    pd.testing.assert_frame_equal(read_output(out), read_output(local_out))
    # the driver merged the workers' shard statistics exactly as the local executor computed them
    ray_val = json.loads((out / "expectations" / "result.json").read_text())
    local_val = json.loads((local_out / "expectations" / "result.json").read_text())
    assert ray_val["shards"] == local_val["shards"] and len(ray_val["shards"]) == SHARDS
    assert ray_val["rows_valid"] == ROWS
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"] == "ray" and manifest["shards"] == SHARDS
    assert manifest["precision"] == "fp32" and manifest["world_size"] == 1 and manifest["device"] == "cpu"
    assert read_parquet_metadata(out / "data" / "part-00007.parquet") == \
        read_parquet_metadata(local_out / "data" / "part-00007.parquet")


def _stop_after(folder: Path, n: int, stop) -> tuple[threading.Thread, dict]:
    """Watch `folder/data` and call `stop()` once, as soon as n parts (but not all) are committed."""
    seen: dict = {"fired": False}

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = len(list((folder / "data").glob("part-*.parquet"))) if (folder / "data").is_dir() else 0
            if n <= done < SHARDS:
                seen["fired"], seen["at"] = True, done
                stop()
                return
            if done >= SHARDS or seen.get("quit"):
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, seen


def _committed(partial: Path) -> dict[str, int]:
    """part name → mtime_ns of each committed part (its stats beside it)."""
    return {p.name: p.stat().st_mtime_ns for p in (partial / "data").glob("part-*.parquet")
            if (partial / "shards" / p.name.replace(".parquet", ".json")).exists()}


def _check_resumed(out: Path, before: dict[str, int], local_out: Path) -> None:
    assert parts(out) == [f"part-{i:05d}.parquet" for i in range(SHARDS)] and hidden(out) == []
    # the committed shards were skipped, not rewritten
    assert {name: (out / "data" / name).stat().st_mtime_ns for name in before} == before
    # nothing duplicated, nothing lost: the same rows as an uninterrupted run
    pd.testing.assert_frame_equal(read_output(out), read_output(local_out))


def test_interrupted_ray_run_resumes_at_shard_granularity(ray_address, recipe, local_out):
    out = recipe.parent / "stopped"
    partial = out.with_name(out.name + ".partial")
    # interrupt_main does nothing while SIGINT is ignored, as it is in a suite started in the background (`pytest &`)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread, seen = _stop_after(partial, 3, _thread.interrupt_main)  # Ctrl-C in the middle of the shards
    try:
        code = main(["run", str(recipe), "--out", str(out), "-q", "--executor", "ray"])
    finally:
        seen["quit"] = True
        thread.join()
        signal.signal(signal.SIGINT, previous)
    assert seen["fired"], "the run finished before it could be interrupted"
    assert code == 130 and partial.is_dir() and not out.exists()
    before = _committed(partial)
    assert 3 <= len(before) < SHARDS
    time.sleep(0.05)  # a rewritten part would get a later mtime
    assert main(["run", str(recipe), "--out", str(out), "-q", "--executor", "ray", "--resume"]) == 0
    _check_resumed(out, before, local_out)
    result = json.loads((out / "expectations" / "result.json").read_text())
    assert [s["index"] for s in result["shards"]] == list(range(SHARDS))


@pytest.mark.slow
def test_killed_ray_run_resumes_on_either_executor(ray_address, recipe, local_out):
    """SIGKILL a CLI process that runs on this Ray through RAY_ADDRESS, then resume with the local executor."""
    out = recipe.parent / "killed"
    partial = out.with_name(out.name + ".partial")
    proc = subprocess.Popen([sys.executable, "-m", "synthforge.cli", "run", str(recipe), "--out", str(out), "-q",
                             "--executor", "ray"], env={**os.environ, "RAY_ADDRESS": ray_address},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    thread, seen = _stop_after(partial, 3, lambda: proc.send_signal(signal.SIGKILL))
    try:
        proc.wait(timeout=300)
    finally:
        seen["quit"] = True
        thread.join()
        proc.kill()
    assert seen["fired"], f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.stderr.close()
    before = _committed(partial)
    assert 3 <= len(before) < SHARDS
    time.sleep(0.05)
    assert main(["run", str(recipe), "--out", str(out), "-q", "--resume"]) == 0  # local this time
    _check_resumed(out, before, local_out)


def _same_files(a: Path, b: Path) -> None:
    """Every data part, image and metadata file byte for byte alike (Parquet metadata holds no time or executor)."""
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()
                   and p.parts[len(a.parts)] in ("data", "images"))
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()
                           and p.parts[len(b.parts)] in ("data", "images"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_text_run_on_ray_writes_the_same_documents_as_local(ray_address, tmp_path):
    from test_text_run import recipe as text_recipe

    recipe = text_recipe(tmp_path, **{"execution.shard_rows": 4, "quality.max_rounds": 10})  # 3 shards of 4
    for executor in ("local", "ray"):
        assert main(["run", str(recipe), "--out", str(tmp_path / executor), "-q", "--executor", executor]) == 0
    assert len(parts(tmp_path / "ray")) == 3 and hidden(tmp_path / "ray") == []
    _same_files(tmp_path / "local", tmp_path / "ray")
    ray_val, local_val = (json.loads((tmp_path / e / "expectations" / "result.json").read_text())
                          for e in ("ray", "local"))
    for shard in ray_val["shards"] + local_val["shards"]:
        assert shard["extra"].pop("seconds") > 0  # what sampling took: the one thing that may differ
    assert ray_val["shards"] == local_val["shards"]
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["executor"] == "ray"


def test_image_run_on_ray_writes_the_same_images_as_local(ray_address, tmp_path):
    from test_image_run import _recipe as image_recipe
    from test_image_run import make_seed_folder

    recipe = image_recipe(tmp_path, make_seed_folder(tmp_path / "seed"), execution={"shard_rows": 6})  # 3 shards
    for executor in ("local", "ray"):
        assert main(["run", str(recipe), "--out", str(tmp_path / executor), "-q", "--executor", executor]) == 0
    assert len(parts(tmp_path / "ray")) == 3 and hidden(tmp_path / "ray") == []
    _same_files(tmp_path / "local", tmp_path / "ray")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / "metadata.parquet"),
                                  pd.read_parquet(tmp_path / "local" / "metadata.parquet"))


def test_relational_run_on_ray_writes_the_same_tables_as_local(ray_address, tmp_path):
    import yaml

    from test_relational_run import recipe as relational_recipe

    path = Path(relational_recipe(tmp_path, stores=True, orphans="keep"))  # stores: drawn once, written once
    data = yaml.safe_load(path.read_text())
    data["execution"] = {"shard_rows": 50}  # 150 customers in 3 shards
    path.write_text(yaml.safe_dump(data))
    for executor in ("local", "ray"):
        assert main(["run", str(path), "--out", str(tmp_path / executor), "-q", "--executor", executor]) == 0
    _same_files(tmp_path / "local", tmp_path / "ray")
    assert len(list((tmp_path / "ray" / "data" / "orders").glob("part-*.parquet"))) == 3
    assert len(list((tmp_path / "ray" / "data" / "stores").glob("part-*.parquet"))) == 1
    assert hidden(tmp_path / "ray") == [] and not list((tmp_path / "ray" / "data").glob("*/.*"))
    customers = pd.read_parquet(tmp_path / "ray" / "data" / "customers")
    orders = pd.read_parquet(tmp_path / "ray" / "data" / "orders")
    assert len(customers) == 150 and customers["customer_id"].is_unique and orders["order_id"].is_unique
    linked = orders["customer_id"].notna()
    assert orders.loc[linked, "customer_id"].isin(set(customers["customer_id"])).all()
    stores = pd.read_parquet(tmp_path / "ray" / "data" / "stores")
    assert orders["store_id"].dropna().isin(set(stores["store_id"])).all()


# Generated ids and personal data on Ray: never a seed value, as on the local executor (issue 32 items 1-2). The
# plant: first names from Faker's own list, where a fresh draw is a seed name about half of the time (so a worker
# without the guard writes dozens of them), in a root table with a key and in a child table without one, which the
# acceptor does not renumber: its names are the ones the model filled while drawing, on the worker.


def _names(n: int, seed: int) -> list[str]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return [fake.first_name() for _ in range(n)]


def _named_shop(folder: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    """customers (key customer_id, a first_name) -> orders (no key, the first_name of whoever collects it), 3
    shards of 50 customers on Ray."""
    import numpy as np
    import yaml

    rng = np.random.default_rng(4)
    # 130 distinct names in all, about half of Faker's draws: more would leave the guard's 20 redraws too few
    customers = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(200)],
                              "first_name": rng.choice(_names(120, 1), 200),
                              "segment": rng.choice(["retail", "sme"], 200)})
    n = 500
    orders = pd.DataFrame({"customer_id": customers["customer_id"].to_numpy()[rng.integers(0, 200, n)],
                           "first_name": rng.choice(_names(60, 2), n), "amount": np.round(rng.gamma(2, 50, n), 2)})
    tables = {"customers": customers, "orders": orders}
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    recipe = {"name": "named", "modality": "relational", "random_seed": 5,
              "seed": {"tables": {"customers": {"source": "customers.csv", "primary_key": "customer_id"},
                                  "orders": {"source": "orders.csv",
                                             "foreign_keys": {"customer_id": "customers.customer_id"}}}},
              "generator": {"params": {"max_epochs": 5}, "time_budget": 30},
              "output": {"rows": 150}, "execution": {"shard_rows": 50, "executor": "ray"},
              "quality": {"metric_rows": 500}}
    path = folder / "named.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path, tables


def _seed_names(frame: pd.DataFrame) -> set[str]:
    return {v.lower() for v in frame["first_name"]}


def _check_names(out: Path, tables: dict[str, pd.DataFrame]) -> None:
    """No table's first_name is one of its seed's (the guard is per column, as identifiers.py keeps it)."""
    for name, frame in tables.items():
        written = pd.read_parquet(out / "data" / name)["first_name"]
        assert len(written) > 100 and not written.str.lower().isin(_seed_names(frame)).any(), name


def _spy_keys(monkeypatch) -> list[bytes]:
    """The keys the driver guards with (the real `guard`, watched), so the test can look for them and for every
    digest made with them."""
    from synthforge.families.identifiers import GeneratedColumns

    keys, guard = [], GeneratedColumns.guard

    def watched(self, frame):
        out = guard(self, frame)
        keys.append(out.secret()[0])
        return out

    monkeypatch.setattr(GeneratedColumns, "guard", watched)
    return keys


def _no_key_nor_digest(folders: list[Path], keys: list[bytes], values: set[str]) -> None:
    """No file under `folders` holds a key, or the digest (raw or hex) of a seed value under any of them."""
    import hashlib
    import hmac

    from synthforge.families.identifiers import canonical

    assert keys
    needles = set()
    for key in keys:
        needles |= {key, key.hex().encode()}
        for v in values:
            d = hmac.new(key, canonical("first_name", v).encode(), hashlib.sha256).digest()
            needles |= {d, d.hex().encode()}
    files = [p for f in folders for p in f.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) > 10
    for p in files:
        try:
            blob = p.read_bytes()
        except OSError:  # a socket or a file Ray holds open for itself
            continue
        assert not any(n in blob for n in needles), p


def test_relational_run_on_ray_never_writes_a_seed_name(ray_address, tmp_path, monkeypatch):
    from shareable_scan import scan_folder

    from synthforge.families.identifiers import GENERATED_FILE, GeneratedColumns

    keys = _spy_keys(monkeypatch)
    path, tables = _named_shop(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "-q"]) in (0, 1)
    assert json.loads((out / "manifest.json").read_text())["executor"] == "ray"
    assert len(pd.read_parquet(out / "data" / "customers")) == 150
    _check_names(out, tables)
    # the plant is real: the same model's columns without the guard (what a worker had) write seed names
    orders = pd.read_parquet(out / "data" / "orders")
    loaded = GeneratedColumns.load(out.with_name("out.private") / "model" / "orders" / GENERATED_FILE)
    unguarded = loaded.fill(orders.drop(columns=["first_name"]), start=0, seed=1)["first_name"]
    assert unguarded.str.lower().isin(_seed_names(tables["orders"])).mean() > 0.1  # 0.19 when written
    # no seed value in any other file of the shareable folder (its data's names are checked above, table by table);
    # no key, nor a digest in any file of the run, its private folder or Ray's session folder
    hits = scan_folder(out, list(tables.values()), skip_data_columns={"segment", "amount", "first_name"},
                       released=list(tables.values()), own_paths=(str(tmp_path), str(tmp_path.resolve())))
    assert hits == [], hits[:20]
    names = _seed_names(tables["customers"]) | _seed_names(tables["orders"])
    _no_key_nor_digest([out, out.with_name("out.private"), *RAY_TEMP], keys, names)


def test_resumed_relational_run_on_ray_guards_again(ray_address, tmp_path, monkeypatch):
    """Killed after fitting: the resumed run loads the model from disk (no digest anywhere) and still writes no
    seed name on the workers."""
    from rich.console import Console

    from synthforge.engine import workspace
    from synthforge.engine.pipeline import fit_or_resume, prepare
    from synthforge.recipe import load_recipe

    path, tables = _named_shop(tmp_path)
    parsed = load_recipe(path)
    modality, seed = prepare(parsed, tmp_path)
    out = tmp_path / "out"
    ws = workspace.open_run(parsed, seed.sha256, out, overwrite=False, resume=False, base_dir=tmp_path)
    fit_or_resume(modality, parsed, seed, "cpu", ws, Console(quiet=True))  # the model saved, nothing generated
    assert (ws.private("model") / "generator.json").exists() and not (ws.work / "data").exists()
    keys = _spy_keys(monkeypatch)
    assert main(["run", str(path), "--out", str(out), "-q", "--resume"]) in (0, 1)
    _check_names(out, tables)
    names = _seed_names(tables["customers"]) | _seed_names(tables["orders"])
    _no_key_nor_digest([out, out.with_name("out.private")], keys, names)


def test_tabular_run_on_ray_never_writes_a_seed_name(ray_address, tmp_path, credit, monkeypatch):
    keys = _spy_keys(monkeypatch)
    import numpy as np

    seed = credit.assign(first_name=np.random.default_rng(3).choice(_names(100, 3), len(credit)))
    seed.to_csv(tmp_path / "named.csv", index=False)
    path = write_recipe(tmp_path, tmp_path / "named.csv", output__rows=450, execution__shard_rows=150,
                        execution__executor="ray")
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "-q"]) in (0, 1)
    df = read_output(out)
    assert len(df) == 450 and not df["first_name"].str.lower().isin(_seed_names(seed)).any()
    _no_key_nor_digest([out, out.with_name("out.private"), *RAY_TEMP], keys, _seed_names(seed))
