"""Server CPU per poll: 4,000 requests (GET /jobs/{id} and GET /jobs in turn, 20 clients at a time) against a
`synthforge serve` with no job running, measured from the server process's own CPU time.

    python benchmarks/service_poll_cost.py

The quick loop behind docs/service.md's "what moved it" figures: benchmarks/service.py measures the same routes
under jobs, this isolates what one poll costs the server."""

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

import service as bench  # noqa: E402


def cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


async def polls(url: str, key: str, ids: list[str], n: int, clients: int) -> None:
    async def client() -> None:
        async with aiohttp.ClientSession(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
            for k in range(n // clients // 2):
                for path in (f"/jobs/{ids[k % len(ids)]}", "/jobs"):
                    async with c.get(path) as r:
                        assert r.status == 200, (path, r.status)
                        await r.read()

    await asyncio.gather(*(client() for _ in range(clients)))


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="synthforge-pollcost-"))
    proc, url, admin = bench.start_server(folder / "data", 1)
    try:
        key, dataset = bench.tenant_with_credit(url, admin, folder)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            ids = []
            for _ in range(4):  # four jobs to poll, cancelled while queued: nothing runs
                job = c.post("/jobs", json={"dataset_id": dataset, "recipe": "credit_tabular",
                                            "overrides": bench.JOB}).json()["id"]
                c.post(f"/jobs/{job}/cancel")
                ids.append(job)
        server = psutil.Process(proc.pid)
        asyncio.run(polls(url, key, ids, 400, 20))  # warm: the key verified, connections pooled
        before, t = cpu(server), time.perf_counter()
        asyncio.run(polls(url, key, ids, 4000, 20))
        print(f"server CPU per poll: {1000 * (cpu(server) - before) / 4000:.2f} ms "
              f"(4,000 polls in {time.perf_counter() - t:.1f} s)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
