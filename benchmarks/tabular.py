"""Tabular benchmark: each SDV synthesizer bare (default parameters) next to synthforge's `auto` choice.

    python benchmarks/tabular.py [--datasets credit_tabular health_insurance] [--rows 10000]

For each shipped recipe: the same train/holdout split synthforge uses; per synthesizer: fit seconds, seconds to
sample 10k rows, sdmetrics' own QualityReport score (an independent check of our metric), synthforge's overall
score, DCR share against the holdout and detection AUC. Prints a markdown table.
"""

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
os.environ.setdefault("XDG_DATA_HOME", "/tmp/synthforge-bench-data")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sdmetrics_score(real, synthetic, metadata: dict) -> float:
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(real, synthetic, metadata, verbose=False)
    return report.get_score()


def main() -> None:
    import torch

    from synthforge.api import run
    from synthforge.data.profile import Profile
    from synthforge.data.sources import read_seed
    from synthforge.engine.run import SPLIT_SEED_STREAM, default_threads, read_output, split
    from synthforge.families.sdv_tabular import synthesizer_class
    from synthforge.quality.evaluate import evaluate_tables
    from synthforge.randomness import derive_seed
    from synthforge.recipe import load_recipe

    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["credit_tabular", "health_insurance"])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--families", nargs="+", default=["gaussian_copula", "ctgan", "tvae", "copulagan"])
    args = ap.parse_args()
    torch.set_num_threads(default_threads())
    rows = []
    for name in args.datasets:
        recipe_path = ROOT / "recipes" / f"{name}.yaml"
        recipe = load_recipe(recipe_path)
        seed = read_seed(recipe.seed.source)
        profile = Profile.from_frame(seed.frame, overrides=recipe.seed.columns, target=recipe.seed.target,
                                     drop=recipe.seed.drop, primary_key=recipe.seed.primary_key)
        data = profile.prepare(seed.frame)
        train, holdout = split(data, recipe.quality.holdout_fraction,
                               derive_seed(recipe.random_seed, SPLIT_SEED_STREAM))
        # Bare SDV sees what SDV itself detects; every row of the table is scored with that same metadata, by
        # sdmetrics and by synthforge, so the two score columns check each other.
        from sdv.metadata import Metadata

        sdv_meta = Metadata.detect_from_dataframes({"seed": train})
        metadata = sdv_meta.to_dict()["tables"]["seed"]
        kinds = {c: ("numerical" if m["sdtype"] == "numerical" else m["sdtype"])
                 for c, m in metadata["columns"].items() if m["sdtype"] in ("numerical", "categorical", "boolean",
                                                                            "datetime")}

        def score(label, synthetic, fit_s, sample_s, epochs=None):
            ours = evaluate_tables(train, synthetic, kinds=kinds, holdout=holdout, target=recipe.seed.target,
                                   random_seed=0)
            row = {"dataset": name, "synthesizer": label, "fit_s": fit_s, "sample_10k_s": sample_s,
                   "sdmetrics_quality": sdmetrics_score(train, synthetic[list(train.columns)], metadata),
                   "synthforge_overall": ours.overall.value, "dcr_share": ours.dcr_share.value,
                   "detection_auc": ours.detection_auc.value, "epochs": epochs}
            rows.append(row)
            print(row, flush=True)

        for family in args.families:
            synth = synthesizer_class(family)(sdv_meta)
            t = time.perf_counter()
            synth.fit({"seed": train})
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            synthetic = synth.sample(args.rows)["seed"]
            score(f"{family} (bare SDV)", synthetic, fit_s, time.perf_counter() - t,
                  300 if family != "gaussian_copula" else None)

        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            result = run(recipe_path, out=Path(tmp) / "out", **{"output.rows": args.rows,
                                                                 "quality.gates": {}})
            total = time.perf_counter() - t
            chosen = next(c for c in result.report.selection if c["chosen"])
            synthetic = read_output(result.folder)
            score(f"synthforge auto → {chosen['family']}", synthetic, result.manifest["timings"]["fit"],
                  result.manifest["timings"]["generate"], chosen.get("epochs"))
            print(f"# {name}: synthforge run total {total:.1f}s", flush=True)

    cols = ["dataset", "synthesizer", "epochs", "fit_s", "sample_10k_s", "sdmetrics_quality", "synthforge_overall",
            "dcr_share", "detection_auc"]
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.3f}"
    return str(v)


if __name__ == "__main__":
    main()
