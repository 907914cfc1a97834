"""Nothing lost: the server killed with SIGKILL with its pool full and jobs queued; its job processes die with it;
after a restart every job ends exactly once (the running ones resumed from their committed work, the queued ones
started), and every job's rows are byte-identical to an uninterrupted `synthforge.run` of the same recipe."""

import os
import signal
import sqlite3
import time

import pytest

from service.helpers import TINY, Server, wait_for

FINAL = ("succeeded", "failed_gates", "failed", "cancelled")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_kill_9_mid_job_then_restart(tmp_path, credit_seed_csv):
    import synthforge

    data = tmp_path / "data"
    server = Server(data, workers=2).start()
    tenant, key = server.tenant("alpha")
    with server.client(key) as c:
        ds = c.post("/datasets", content=credit_seed_csv.read_bytes()).json()
        jobs = [c.post("/jobs", json={"dataset_id": ds["id"], "recipe": "credit_tabular",
                                      "overrides": TINY}).json()["id"] for _ in range(7)]
        # wait until a job has committed work (its model fitted, the shard written: stage evaluate)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            states = {j: c.get(f"/jobs/{j}").json() for j in jobs}
            if any(s["stage"] in ("evaluate", "report") for s in states.values()):
                break
            time.sleep(0.3)
    running = [j for j, s in states.items() if s["state"] == "running"]
    assert len(running) == 2 and sum(s["state"] == "queued" for s in states.values()) == 5, states
    with sqlite3.connect(data / "synthforge.db") as db:
        pids = [pid for (pid,) in db.execute("SELECT pid FROM jobs WHERE state = 'running'") if pid]
    assert len(pids) == 2
    server.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "job processes outlived the killed server"

    server = Server(data, workers=2, port=server.port).start()
    try:
        with server.client(key) as c:
            done = {j: wait_for(c, j, FINAL, timeout=900) for j in jobs}
            events = {j: c.get(f"/jobs/{j}/events").json() for j in jobs}
    finally:
        server.stop()
    local = synthforge.run("example://credit_tabular", out=tmp_path / "local",
                           **{**TINY, "seed.source": str(credit_seed_csv)})
    expected = sorted((local.folder / "data").glob("part-*.parquet"))
    for j in jobs:
        assert done[j]["state"] == "succeeded", done[j]
        finals = [e for e in events[j] if e["kind"] == "state" and e["data"]["state"] in FINAL]
        assert len(finals) == 1, events[j]  # ended exactly once
        runs = [e for e in events[j] if e["kind"] == "state" and e["data"]["state"] == "running"]
        assert len(runs) == (2 if j in running else 1), events[j]  # the interrupted ones ran again, once
        parts = sorted((data / "tenants" / tenant / "jobs" / j / "out" / "data").glob("part-*.parquet"))
        assert [p.read_bytes() for p in parts] == [p.read_bytes() for p in expected], j
    resumed_stages = [e["data"]["stage"] for j in running for e in events[j] if e["kind"] == "stage"]
    assert resumed_stages.count("load") == 4  # each interrupted job loaded twice (before and after the kill)
