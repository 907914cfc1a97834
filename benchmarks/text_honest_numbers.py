"""Numbers that cannot flatter, for text (issue 32, item 7): TSTR on every synthetic document (before) and on as many
as TRTR has real ones (now: the mean over the augmentation gain's 10 draws), real + synthetic on the whole pool
(before) and over the gain's runs (now), and the gain's 95 % interval over the draws alone (before; the report keeps it
as `ci95_draws`) and with the holdout bootstrap (now, `ci95`). Same data, same metric seed, same draws.

    python benchmarks/text_honest_numbers.py recipes/medical_text.yaml                       # stand-in synthetic sets
    python benchmarks/text_honest_numbers.py recipes/medical_text.yaml --run runs/medical_text   # a finished run

The seed's train/holdout split and the metric seed are the run's own (the recipe's text loader, METRIC_SEED_STREAM).
Without --run, two stand-ins that need no generator: `--rows` reviews each spliced from the first half of one training
review and the second half of another of the same rating (ratings balanced), and the planted copy: the training
reviews themselves. Prints one JSON object (docs/quality.md quotes it)."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def spliced(train: pd.DataFrame, text: str, label: str, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = sorted(train[label].astype(str).unique())
    out = []
    for k in range(rows):
        lab = labels[k % len(labels)]
        docs = train.loc[train[label].astype(str) == lab, text].astype(str).to_numpy()
        a, b = (docs[i].split() for i in rng.choice(len(docs), 2, replace=False))
        out.append({text: " ".join(a[:len(a) // 2] + b[len(b) // 2:]), label: lab})
    return pd.DataFrame(out)


def compare(train, holdout, synthetic, text, label, seed, encode) -> dict:
    """Before (TSTR and real + synthetic on every synthetic document, the draws-only interval) beside now."""
    from sklearn.metrics import f1_score

    from synthforge.quality.gates import check_gates
    from synthforge.quality.text_metrics import _classifier, utility
    from synthforge.quality.uplift import uplift_metrics

    now = utility(train, holdout, synthetic, text, label, random_seed=seed, encode=encode)
    xr, xs, xt = (encode(f[text].astype(str).tolist()) for f in (train, synthetic, holdout))
    yr, ys, yt = (f[label].astype(str).to_numpy() for f in (train, synthetic, holdout))

    def f1(x, y) -> float:
        pred = _classifier(len(y), len(yr)).fit(x, y).predict(xt)
        return float(f1_score(yt, pred, average="macro", labels=sorted(set(yt)), zero_division=0))

    tstr_before, trtr = f1(xs, ys), now["trtr"]["macro_f1"]
    gain = now["uplift"]
    gate = {"min_augmentation_gain": 0.0}
    passes = lambda ci: check_gates(uplift_metrics(dict(gain, ci95=ci), "macro-F1", {}), gate)[0].passed  # noqa
    return {"synthetic": len(synthetic), "train": len(train), "holdout": len(holdout), "metric_seed": seed,
            "trtr": trtr,
            "tstr_before": {"macro_f1": tstr_before, "train_rows": len(ys)},
            "tstr_now": {k: now["tstr"].get(k) for k in ("macro_f1", "train_rows", "draws", "macro_f1_sd",
                                                         "macro_f1_range", "note")},
            "utility_before": tstr_before / trtr, "utility_now": now["ratio"],
            "augmented_before": {"macro_f1": f1(np.vstack([xr, xs]), np.concatenate([yr, ys])),
                                 "train_rows": len(yr) + len(ys)},
            "augmented_now": {k: now["augmented"].get(k) for k in ("macro_f1", "train_rows", "draws")},
            "gain_mean": gain["mean"], "ci95_before_draws_only": gain["ci95_draws"],
            "ci95_now_bootstrap": gain["ci95"], "copy_control": gain.get("copy_control"),
            "gate_min_augmentation_gain_0": {"before": passes(gain["ci95_draws"]), "now": passes(gain["ci95"])}}


def c_sweep(train, holdout, text, label, encode) -> dict:
    """TRTR macro-F1 minus the evaluator's (C = 1 on the real documents) at other penalties: how far a change that
    only reweights the real documents can move the score on this holdout."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    xr, xt = encode(train[text].astype(str).tolist()), encode(holdout[text].astype(str).tolist())
    yr, yt = train[label].astype(str).to_numpy(), holdout[label].astype(str).to_numpy()
    f1 = {c: float(f1_score(yt, LogisticRegression(max_iter=2000, class_weight="balanced", C=c).fit(xr, yr)
                            .predict(xt), average="macro", labels=sorted(set(yt)), zero_division=0))
          for c in (0.25, 0.5, 1.0, 2.0, 4.0)}
    return {f"C={c:g}": f - f1[1.0] for c, f in f1.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("--run", default=None, help="a finished run folder: grade its data/ instead of the stand-ins")
    ap.add_argument("--rows", type=int, default=800)
    args = ap.parse_args()

    from synthforge.engine.modalities.text import Text
    from synthforge.quality.text_metrics import _encoder
    from synthforge.randomness import METRIC_SEED_STREAM, derive_seed
    from synthforge.recipe.load import load_recipe

    recipe = load_recipe(args.recipe)
    seed = Text().load(recipe, Path(args.recipe).resolve().parent)
    text, label = recipe.seed.text_column, recipe.seed.label_column
    metric_seed = derive_seed(recipe.random_seed, METRIC_SEED_STREAM)
    model, cache = _encoder(), {}

    def encode(docs: list[str]) -> np.ndarray:  # each document embedded once across the cases
        missing = [d for d in dict.fromkeys(docs) if d not in cache]
        if missing:
            cache.update(zip(missing, model(missing)))
        return np.array([cache[d] for d in docs]) if docs else np.zeros((0, 384))

    train, holdout = seed.train, seed.holdout
    if args.run:
        cases = {"run": pd.read_parquet(Path(args.run) / "data")}
    else:
        cases = {f"spliced_{args.rows}": spliced(train, text, label, args.rows, metric_seed),
                 "copies_of_train": train[[text, label]].copy()}
    out = {name: compare(train, holdout, syn, text, label, metric_seed, encode) for name, syn in cases.items()}
    out["trtr_by_c"] = c_sweep(train, holdout, text, label, encode)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
