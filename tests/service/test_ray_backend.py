"""The service dispatching its jobs' shards to an existing Ray cluster (`ray start --head`, started here and stopped
by its own process, never `ray stop`): the rows equal a local `synthforge.run` of the same recipe and seed.
Slow: `python -m pytest -n 0 -m ray_service tests/service`."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from service.helpers import TINY, Server, free_port, wait_for

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_head():
    temp = tempfile.mkdtemp(prefix="sf-ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    ray = Path(sys.executable).with_name("ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen([str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        import socket

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.ray_service
def test_jobs_on_a_ray_cluster(ray_head, tmp_path, credit_seed_csv):
    import pandas as pd

    import synthforge

    server = Server(tmp_path / "data", workers=1, executor=ray_head).start()
    try:
        _, key = server.tenant("alpha")
        with server.client(key) as c:
            ds = c.post("/datasets", content=credit_seed_csv.read_bytes()).json()
            job = c.post("/jobs", json={"dataset_id": ds["id"], "recipe": "credit_tabular",
                                        "overrides": {**TINY, "output.rows": 600}}).json()
            done = wait_for(c, job["id"], ("succeeded", "failed_gates", "failed", "cancelled"), timeout=600)
            assert done["state"] == "succeeded", done
            manifest = c.get(f"/jobs/{job['id']}/manifest.json").json()
            served = c.get(f"/jobs/{job['id']}/data.parquet").content
    finally:
        server.stop()
    assert manifest["executor"] == "ray"
    local = synthforge.run("example://credit_tabular", out=tmp_path / "local",
                           **{**TINY, "output.rows": 600, "seed.source": str(credit_seed_csv)})
    import io

    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(served)), local.data())
