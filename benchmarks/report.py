"""Fidelity speed and equality: synthforge vs sdmetrics' QualityReport.

Run from the repository root:  python benchmarks/report.py
Builds seeded mixed tables (20 columns: numerical, categorical, boolean, datetime, with NaNs),
a perturbed "synthetic" copy, and times sdmetrics' QualityReport.generate (verbose=False)
against synthforge's column shapes + pair trends, at 100k rows and at 20k rows (below
sdmetrics' 50,000-row contingency subsampling, where both compute exactly).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthforge.quality.fidelity import fidelity_metrics  # noqa: E402

N_COLUMNS = 20


def make_table(n: int, seed: int, perturb: bool = False) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    if perturb:  # weaker dependence and shifted marginals
        latent[:, 1] = 0.5 * latent[:, 1] + rng.normal(size=n) * 0.5
    cols, kinds = {}, {}
    for i in range(8):
        base = latent[:, i % 3] * (1 + i / 4) + rng.normal(size=n) * (0.3 + 0.2 * i)
        if perturb:
            base = base * 1.1 + 0.1
        if i % 3 == 2:
            base = np.exp(base / 3)
        base[rng.random(n) < 0.03 * (i % 2)] = np.nan
        cols[f"num{i}"], kinds[f"num{i}"] = base, "numerical"
    for i in range(6):
        k = [3, 5, 8, 12, 30, 60][i]
        score = latent[:, i % 3] + rng.normal(size=n) * (0.5 + 0.3 * i)
        codes = np.clip(((score + 3) / 6 * k).astype(int), 0, k - 1)
        values = np.array([f"c{j}" for j in range(k)], dtype=object)[codes]
        values[rng.random(n) < 0.02 * (i % 3)] = None
        cols[f"cat{i}"], kinds[f"cat{i}"] = values, "categorical"
    for i in range(3):
        cols[f"flag{i}"] = latent[:, i] + rng.normal(size=n) * 0.5 > (0.2 if perturb else 0.0)
        kinds[f"flag{i}"] = "boolean"
    for i in range(3):
        days = (latent[:, i] * 200 + rng.normal(size=n) * 50).astype(int) + 10_000
        when = pd.Series(pd.Timestamp("1990-01-01") + pd.to_timedelta(days, unit="D"))
        when[rng.random(n) < 0.02] = pd.NaT
        cols[f"date{i}"], kinds[f"date{i}"] = when, "datetime"
    df = pd.DataFrame(cols)
    assert len(df.columns) == N_COLUMNS
    return df, kinds


def run(n: int) -> dict:
    real, kinds = make_table(n, seed=1)
    synthetic, _ = make_table(n, seed=2, perturb=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        start = time.perf_counter()
        report.generate(real, synthetic, {"columns": {c: {"sdtype": k} for c, k in kinds.items()}},
                        verbose=False)
        sd_seconds = time.perf_counter() - start
    start = time.perf_counter()
    shapes, trends, _ = fidelity_metrics(real, synthetic, kinds)
    sf_seconds = time.perf_counter() - start
    props = report.get_properties().set_index("Property")["Score"]
    return {"rows": n, "sd_s": sd_seconds, "sf_s": sf_seconds,
            "sd_shapes": props["Column Shapes"], "sf_shapes": shapes.value,
            "sd_trends": props["Column Pair Trends"], "sf_trends": trends.value}


def main() -> None:
    rows = [run(100_000), run(20_000)]
    print(f"{N_COLUMNS} columns (8 numerical, 6 categorical, 3 boolean, 3 datetime), "
          f"real seed 1 vs perturbed synthetic seed 2\n")
    print("| rows | columns | sdmetrics s | synthforge s | speed-up | column shapes sdmetrics "
          "| column shapes synthforge | abs diff | pair trends sdmetrics | pair trends synthforge "
          "| abs diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['rows']:,} | {N_COLUMNS} | {r['sd_s']:.2f} | {r['sf_s']:.2f} | "
              f"{r['sd_s'] / r['sf_s']:.1f}x | {r['sd_shapes']:.4f} | {r['sf_shapes']:.4f} | "
              f"{abs(r['sd_shapes'] - r['sf_shapes']):.1e} | {r['sd_trends']:.4f} | "
              f"{r['sf_trends']:.4f} | {abs(r['sd_trends'] - r['sf_trends']):.1e} |")


if __name__ == "__main__":
    main()
