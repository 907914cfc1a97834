"""Generation + validation throughput: the local executor, Ray with 1 worker and Ray with 2 workers, in one run.

Run from the repository root (Ray installed: pip install -e '.[scale,examples]'):

    RAY_AUTH_MODE=disabled python benchmarks/scale.py --rows 1000000 --shard-rows 50000

Fits gaussian_copula once on example://credit_data (4,454 rows) and saves it, then generates and validates the same
shards (same recipe seed, so the same rows) with each executor into its own folder; rows/s counts only that stage:
from the executor call to its return, for Ray including its workers' start-up (importing SDV and Great
Expectations, loading the saved model), excluding `ray.init` (shown apart). Ray is started with num_cpus=1, then
num_cpus=2, one after the other in this process, and shut down after each. At the end the three outputs are
compared part by part: the rows must be identical. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("XDG_DATA_HOME", "/tmp/synthforge-test-data")

import pandas as pd  # noqa: E402

from synthforge.data.examples import EXAMPLES  # noqa: E402
from synthforge.data.profile import Profile  # noqa: E402
from synthforge.engine.executors import run_local  # noqa: E402
from synthforge.engine.pipeline import default_threads  # noqa: E402
from synthforge.engine.shards import plan_shards  # noqa: E402
from synthforge.families.sdv_tabular import SDVGenerator  # noqa: E402
from synthforge.quality import expectations as ex  # noqa: E402

MAX_ROUNDS = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--shard-rows", type=int, default=50_000)
    ap.add_argument("--example", default="credit_data", choices=sorted(EXAMPLES))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", help="keep the outputs in this folder (default: a temporary one, removed)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(default_threads())  # what `synthforge run` does on this machine
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sf-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        rows = run_all(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_table(args, rows)


def run_all(args, root: Path) -> list[dict]:
    seed = EXAMPLES[args.example][1]()
    profile = Profile.from_frame(seed, target="Status" if "Status" in seed.columns else None)
    data = profile.prepare(seed)
    started = time.perf_counter()
    generator = SDVGenerator("gaussian_copula", profile, random_state=args.seed).fit(data)
    model_dir = root / "model"
    generator.save(model_dir)
    generator = SDVGenerator.load(model_dir, trusted=True)
    suite = ex.build_suite("scale_suite", profile.metric_kinds(), data)
    print(f"fit + suite: {time.perf_counter() - started:.1f}s; {len(suite.expectations)} expectations", flush=True)
    shards = plan_shards(args.rows, args.shard_rows, args.seed)
    meta = {"recipe": "scale", "random_seed": args.seed, "family": "gaussian_copula"}
    results = []

    folder = root / "local"
    t = time.perf_counter()
    stats = run_local(generator, suite, shards, folder, MAX_ROUNDS, meta)
    results.append(_row("local", "1 process", stats, time.perf_counter() - t, None, folder))
    print(results[-1], flush=True)

    import ray

    from synthforge.engine.ray_executor import run_ray

    for workers in (1, 2):
        folder = root / f"ray{workers}"
        temp = tempfile.mkdtemp(prefix="sf-ray-", dir="/tmp")
        try:
            t = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, _temp_dir=temp, logging_level="ERROR",
                     log_to_driver=False)
            init = time.perf_counter() - t
            t = time.perf_counter()
            stats = run_ray(model_dir, suite, shards, folder, MAX_ROUNDS, meta)
            results.append(_row("ray", f"{workers} worker{'s' if workers > 1 else ''}", stats,
                                time.perf_counter() - t, init, folder))
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)
        print(results[-1], flush=True)

    same = _same_rows([r["folder"] for r in results])
    for r in results:
        r["same"] = same
    return results


def _row(executor: str, workers: str, stats, seconds: float, init: float | None, folder: Path) -> dict:
    rows = sum(s.rows for s in stats)
    return {"executor": executor, "workers": workers, "rows": rows, "shards": len(stats),
            "sampled": sum(s.sampled for s in stats), "invalid": sum(s.invalid for s in stats),
            "seconds": seconds, "rows_s": rows / seconds, "init": init, "folder": folder}


def _same_rows(folders: list[Path]) -> bool:
    names = [sorted(p.name for p in (f / "data").glob("part-*.parquet")) for f in folders]
    if any(n != names[0] for n in names):
        return False
    for name in names[0]:
        first = pd.read_parquet(folders[0] / "data" / name)
        for f in folders[1:]:
            if not first.equals(pd.read_parquet(f / "data" / name)):
                return False
    return True


def print_table(args, rows: list[dict]) -> None:
    ray1 = next(r for r in rows if r["workers"] == "1 worker" and r["executor"] == "ray")
    load = os.getloadavg()
    print(f"\n{args.rows:,} rows of {args.example} (gaussian_copula), {rows[0]['shards']} shards of "
          f"{args.shard_rows:,}; {os.cpu_count()} cores, load average before the run ended "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; identical rows across executors: "
          f"{'yes' if rows[0]['same'] else 'NO'}\n")
    print("| executor | workers | rows | seconds | rows/s | × Ray 1 worker | ray.init (not counted) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        init = "–" if r["init"] is None else f"{r['init']:.1f} s"
        print(f"| {r['executor']} | {r['workers']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_s']:,.0f} | "
              f"{r['rows_s'] / ray1['rows_s']:.2f} | {init} |")


if __name__ == "__main__":
    main()
