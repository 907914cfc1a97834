"""Service load benchmark: clients polling, listing and streaming events while jobs run, against the same jobs run
with no clients (one run, same machine, same server).

    python benchmarks/service.py                       # 50 clients, at least 120 s, 2 jobs on 2 workers
    python benchmarks/service.py --clients 20 --seconds 60 --out /tmp/service.json

Steps: start `synthforge serve` on 127.0.0.1 (a fresh data folder, --workers 2), make a tenant and key, upload the
credit seed (CSV). Baseline: 2 credit jobs, nobody else calling; each job's wall time (started → finished, from the
API). Load: 2 more of the same jobs while N clients each loop (GET /jobs/{id}, GET /jobs, then sleep `--pause`);
every fifth client instead follows GET /jobs/{id}/stream (resuming with Last-Event-ID when it ends) and polls once a
second. The load lasts until both jobs have ended and at least `--seconds` have passed. Reported: requests, failed
requests (any non-2xx, any transport error), p50/p99 latency per route, and the jobs' wall times with and without
the clients. The per-key rate limit is raised for the run (all clients share one key).
"""

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402  (ray[default]'s dependency, in the test extras)
import httpx  # noqa: E402
import numpy as np  # noqa: E402

# a job that trains for about two minutes on the 2 cores (150 epochs, no early stop), so the clients' load overlaps
# the jobs for the whole measurement
JOB = {"output.rows": 2000, "generator.family": "autoregressive",
       "generator.params": {"max_epochs": 150, "patience": 150}, "quality.gates": {}}
FINAL = ("succeeded", "failed_gates", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, workers: int) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    env = {**os.environ, "SYNTHFORGE_RATE_PER_MINUTE": "10000000", "SYNTHFORGE_RATE_BURST": "100000",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "synthforge.cli", "serve", "--port", str(port), "--data",
                             str(data), "--workers", str(workers)], stderr=subprocess.PIPE, env=env)
    admin = None
    for line in iter(proc.stderr.readline, b""):
        found = re.search(r"(sf_\S+)", line.decode())
        admin = found.group(1) if found else admin
        if b"serving on" in line:
            break
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/health")
            break
        except httpx.TransportError:
            time.sleep(0.2)
    return proc, url, admin


def tenant_with_credit(url: str, admin: str, folder: Path) -> tuple[str, str]:
    """A tenant, its read/write key and its upload of credit_data as CSV: (key, dataset id)."""
    import pandas as pd

    from synthforge.data.examples import materialise

    seed = folder / "credit.csv"
    pd.read_parquet(materialise("credit_data")).to_csv(seed, index=False)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as a:
        tenant = a.post("/admin/tenants", json={"name": "bench"}).json()["id"]
        key = a.post(f"/admin/tenants/{tenant}/keys", json={"scopes": ["read", "write"]}).json()["key"]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        return key, c.post("/datasets", content=seed.read_bytes()).json()["id"]


def wall(job: dict) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


def run_jobs(c: httpx.Client, dataset: str, n: int) -> list[str]:
    return [c.post("/jobs", json={"dataset_id": dataset, "recipe": "credit_tabular", "overrides": JOB}).json()["id"]
            for _ in range(n)]


def wait(c: httpx.Client, ids: list[str]) -> list[dict]:
    while True:
        jobs = [c.get(f"/jobs/{j}").json() for j in ids]
        if all(j["state"] in FINAL for j in jobs):
            return jobs
        time.sleep(1)


class CpuMeter:
    """CPU-seconds of the server process itself, of this process (the clients) and of the whole machine, from the
    start of the load until the jobs end: where the cores went while the jobs ran (the jobs had the rest)."""

    def __init__(self, server_pid: int):
        import psutil

        self.server, self.me = psutil.Process(server_pid), psutil.Process()
        self.start = {"server": self._cpu(self.server), "clients": self._cpu(self.me), "machine": self._busy()}
        self.result: dict | None = None
        self.t0 = time.monotonic()

    @staticmethod
    def _busy() -> float:
        import psutil

        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq

    @staticmethod
    def _cpu(p) -> float:
        t = p.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.result = {"seconds": round(time.monotonic() - self.t0, 1),
                       "server_cpu_s": round(self._cpu(self.server) - self.start["server"], 1),
                       "clients_cpu_s": round(self._cpu(self.me) - self.start["clients"], 1),
                       "machine_busy_cpu_s": round(self._busy() - self.start["machine"], 1)}


async def load(url: str, key: str, ids: list[str], clients: int, seconds: float, pause: float,
               cpu: CpuMeter | None = None) -> dict:
    latencies: dict[str, list[float]] = {"status": [], "list": [], "stream_first_byte": [], "watch": []}
    failures: list[str] = []
    done = asyncio.Event()
    started = time.monotonic()

    async def call(c, route: str, path: str) -> dict | list | None:
        t = time.perf_counter()
        try:
            async with c.get(path) as r:
                body = await r.read()
        except aiohttp.ClientError as e:
            failures.append(f"{route}: {type(e).__name__}")
            return None
        latencies[route].append(time.perf_counter() - t)
        if r.status >= 300:
            failures.append(f"{route}: HTTP {r.status}")
            return None
        return json.loads(body)

    def client(timeout: float):
        # aiohttp, not httpx, for the clients: they share the 2 cores with the server and the jobs, and httpx's
        # AsyncClient spent ~1.5 ms of CPU per request (benchmarks/service.py, 2026-12-07), aiohttp under half that
        return aiohttp.ClientSession(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout))

    async def poller(i: int) -> None:
        # clients start at random moments within a polling period, as independent users do, not in one burst of
        # 40 every second
        await asyncio.sleep(pause * ((i * 0.6180339887) % 1.0))
        async with client(30) as c:
            while not done.is_set():
                await call(c, "status", f"/jobs/{ids[i % len(ids)]}")
                await call(c, "list", "/jobs")
                await asyncio.sleep(pause)

    async def streamer(i: int) -> None:
        job, last = ids[i % len(ids)], "0"
        async with client(60) as c:
            while not done.is_set():
                t = time.perf_counter()
                try:
                    async with c.get(f"/jobs/{job}/stream", headers={"Last-Event-ID": last}) as r:
                        if r.status != 200:
                            failures.append(f"stream: HTTP {r.status}")
                        first = True
                        async for raw in r.content:
                            line = raw.decode().strip()
                            if first:
                                latencies["stream_first_byte"].append(time.perf_counter() - t)
                                first = False
                            if line.startswith("id:"):
                                last = line[3:].strip()
                            if done.is_set():
                                break
                except aiohttp.ClientError as e:
                    failures.append(f"stream: {type(e).__name__}")
                await call(c, "status", f"/jobs/{job}")
                await asyncio.sleep(1.0)

    async def watch() -> None:
        async with client(30) as c:
            while True:
                states = [(await call(c, "watch", f"/jobs/{j}") or {}).get("state") for j in ids]
                if cpu is not None and cpu.result is None and all(s in FINAL for s in states):
                    cpu.stop()
                if all(s in FINAL for s in states) and time.monotonic() - started >= seconds:
                    done.set()
                    return
                await asyncio.sleep(1)

    tasks = [asyncio.create_task(streamer(i) if i % 5 == 4 else poller(i)) for i in range(clients)]
    await watch()
    await asyncio.wait(tasks, timeout=30)
    return {"seconds": round(time.monotonic() - started, 1), "latencies": latencies, "failures": failures}


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.array(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--pause", type=float, default=1.0, help="a polling client's sleep between rounds")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="synthforge-bench-"))
    proc, url, admin = start_server(folder / "data", args.workers)
    try:
        key, dataset = tenant_with_credit(url, admin, folder)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            print("baseline: 2 jobs, no clients", file=sys.stderr)
            alone = wait(c, run_jobs(c, dataset, 2))
            print(f"load: 2 jobs, {args.clients} clients", file=sys.stderr)
            ids = run_jobs(c, dataset, 2)
            cpu = CpuMeter(proc.pid)
            measured = asyncio.run(load(url, key, ids, args.clients, args.seconds, args.pause, cpu))
            loaded = wait(c, ids)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result = {
        "clients": args.clients, "load_seconds": measured["seconds"], "workers": args.workers,
        "cores": os.cpu_count(), "job": JOB,
        "requests": sum(len(v) for v in measured["latencies"].values()),
        "failed_requests": len(measured["failures"]), "failures": sorted(set(measured["failures"]))[:10],
        "routes": {k: summary(v) for k, v in measured["latencies"].items()},
        "job_wall_alone_s": [round(wall(j), 1) for j in alone],
        "job_wall_loaded_s": [round(wall(j), 1) for j in loaded],
        "job_states": [j["state"] for j in alone + loaded],
        "cpu_while_jobs_ran": cpu.result,
    }
    result["wall_ratio"] = round(sum(result["job_wall_loaded_s"]) / sum(result["job_wall_alone_s"]), 3)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
