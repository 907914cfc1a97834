"""Copy checks and attacks on the shipped default generator: the table in docs/privacy.md.

    python benchmarks/privacy.py [--tables credit_data HealthInsurance ames CPS1988] [--seed 0] [--json rows.json]

Each table is split as benchmarks/tabular.py splits it (70/30, rng 7), synthforge's default family is fitted on the
training rows (one torch thread) and samples as many rows as training has; the output is graded with
`evaluate_frames` as a run grades it, and the privacy figures are printed beside the holdout's own: the close and
near-copy shares (full training set), NNDR, the DCR share, both membership-inference AUCs and anonymeter's risks,
with the seconds the attacks add to the report.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from tabular import RUNNERS, load  # noqa: E402


def one(table: str, seed: int) -> dict:
    from synthforge.quality.evaluate import evaluate_frames

    train, hold, target = load(table)
    t = time.perf_counter()
    synth = RUNNERS["synthforge"](train, len(train), seed, target)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    q = evaluate_frames(train, synth, holdout=hold, target=target, random_seed=seed)
    report_s = time.perf_counter() - t
    t = time.perf_counter()
    evaluate_frames(train, synth, holdout=hold, target=target, random_seed=seed)
    report_warm_s = time.perf_counter() - t
    from synthforge.quality.membership import attack_metrics
    from synthforge.data.profile import Profile

    profile = Profile.from_frame(train, target=target)
    kinds = profile.metric_kinds()
    prep = [profile.prepare(f[list(kinds)]) for f in (train, synth, hold)]
    t = time.perf_counter()
    attack_metrics(prep[0], prep[1], prep[2], kinds, target=target if target in kinds else None, seed=seed)
    attacks_s = time.perf_counter() - t
    m = q.metrics()

    def v(name, key=None):
        metric = m.get(name)
        if metric is None:
            return None
        return metric.value if key is None else metric.detail.get(key)

    return {"table": table, "rows": [len(train), len(hold)], "fit_s": round(fit_s, 1),
            "close_syn": v("close_share_excess", "synthetic_share"), "close_hold": v("close_share_excess", "holdout_share"),
            "close_excess": v("close_share_excess"),
            "near_syn": v("near_copy_excess", "synthetic_share"), "near_hold": v("near_copy_excess", "holdout_share"),
            "near_excess": v("near_copy_excess"),
            "nndr": v("nndr"), "nndr_hold": v("nndr", "holdout_nndr"),
            "dcr_share": v("dcr_share"), "exact_excess": v("exact_copy_excess"),
            "mia_dcr": v("mia_auc", "dcr_attack_auc"), "mia_density": v("mia_auc", "density_attack_auc"),
            "mia_chance_hi": (v("mia_auc", "chance_ci95") or [None, None])[1],
            "singling_out": v("singling_out_risk"), "linkability": v("linkability_risk"), "inference": v("inference_risk"),
            "inference_secrets": {k: round(s["risk"], 3) for k, s in (v("inference_risk", "secrets") or {}).items()},
            "quality": v("overall"), "detection": v("detection_auc"),
            "report_s": round(report_s, 1), "report_warm_s": round(report_warm_s, 1), "attacks_s": round(attacks_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", nargs="+", default=["credit_data", "HealthInsurance", "ames", "CPS1988"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for table in args.tables:
        row = one(table, args.seed)
        rows.append(row)
        print(json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in row.items()}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
