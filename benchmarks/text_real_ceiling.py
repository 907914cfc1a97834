"""What *real* documents add under the report's text evaluator: the ceiling a synthetic augmentation gain is judged
beside (the text recipes' gates ask for a gain whose 95 % interval lies above 0).

    python benchmarks/text_real_ceiling.py [--threads 2]

Evaluator: the report's own (synthforge.quality.text_metrics: all-MiniLM-L6-v2 embeddings + logistic regression with
balanced classes and the penalty per document of C = 1 on the recipe's real training documents, macro-F1 on the
held-out split); each gain is the mean of 5 draws with its Student-t 95 % interval (uplift.interval), as the report's
gain is of its draws. The first row after each baseline is the control: the same documents twice, no new one.
`--fixed-c`: C = 1 at every training-set size instead (the report's evaluator before 2026-11-30), where the control
row shows what the count alone moved.
- fine-food reviews: the seed's 800 training reviews (the example's split), then + k real reviews drawn from the other
  3,200 reviews of modeldata's training_data (never in the seed); k = 800 is what the report's gain adds (as many
  synthetic documents as real ones).
- drug reviews (600 training reviews, no others exist): a random 300 of them, then + 150 / + 300 of the other half,
  for three halves (a 300 → 600 learning curve; + 300 uses every remaining review, so its draws do not vary).

`--gate`: the report's gate itself with real documents in the synthetic documents' place: `uplift_bootstrap`, 10
draws as large as the real set and 1,000 resamples of draws and held-out documents, the interval whose lower end
`min_augmentation_gain` reads. Fine-food: the seed's 800 + draws of 800 from the 3,200 others; drug: a random 300 +
draws of 300 from the other 300 (with replacement, as the report draws from a pool no larger), three halves; and the
copy control (the draws taken from the training documents themselves). A generator as good as fresh real documents
scores what these rows score.
"""

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def gains(name: str, base: pd.DataFrame, extra: pd.DataFrame, test: pd.DataFrame, text: str, label: str,
          sizes: list[int], encode, runs: int = 5, real_rows: int | None = None, fixed_c: bool = False) -> list[str]:
    """`real_rows`: the training-set size whose penalty per document every fit keeps (the recipe's real documents;
    text_metrics._classifier); `fixed_c`: C = 1 for every fit."""
    from sklearn.metrics import f1_score

    from synthforge.quality.text_metrics import _classifier
    from synthforge.quality.uplift import interval

    y_test = test[label].astype(str).to_numpy()
    classes = sorted(set(y_test))
    x_test, x_base, x_extra = (encode(d[text].astype(str).tolist()) for d in (test, base, extra))
    y_base, y_extra = base[label].astype(str).to_numpy(), extra[label].astype(str).to_numpy()

    def f1(x, y):
        model = _classifier(len(y), len(y) if fixed_c else real_rows or len(y_base))
        return f1_score(y_test, model.fit(x, y).predict(x_test), average="macro", labels=classes)

    alone = f1(x_base, y_base)
    rows = [f"| {name} | {len(base)} real | — | {alone:.4f} |"]
    print(rows[0], flush=True)
    # the control: no new document, so no gain (a count effect of the classifier would show here)
    copies = f1(np.vstack([x_base, x_base]), np.concatenate([y_base, y_base])) - alone
    rows.append(f"| {name} | {len(base)} + a copy of the same {len(base)} | {copies:+.4f} | {alone + copies:.4f} |")
    print(rows[-1], flush=True)
    rng = np.random.default_rng(0)
    for k in sizes:
        diffs = []
        for _ in range(runs):
            idx = rng.choice(len(extra), k, replace=False)
            diffs.append(f1(np.vstack([x_base, x_extra[idx]]), np.concatenate([y_base, y_extra[idx]])) - alone)
        mean, low, high = interval(diffs)
        rows.append(f"| {name} | {len(base)} + {k} real | {mean:+.4f} [{low:+.4f}, {high:+.4f}] | "
                    f"{alone + mean:.4f} |")
        print(rows[-1], flush=True)
    return rows


def gate(name: str, base: pd.DataFrame, pool: pd.DataFrame, test: pd.DataFrame, text: str, label: str, encode,
         real_rows: int | None = None, seed: int = 42) -> str:
    """The report's augmentation gain (text_metrics.utility: the same classifier, draws and bootstrap) with `pool`
    standing in for the synthetic documents."""
    from synthforge.quality.text_metrics import _classifier
    from synthforge.quality.uplift import macro_f1, uplift_bootstrap

    y_test = test[label].astype(str).to_numpy()
    classes = sorted(set(y_test))
    x_test, x_base, x_pool = (encode(d[text].astype(str).tolist()) for d in (test, base, pool))
    y_base, y_pool = base[label].astype(str).to_numpy(), pool[label].astype(str).to_numpy()
    n = real_rows or len(y_base)
    alone = _classifier(len(y_base), n).fit(x_base, y_base).predict(x_test)

    def predict(idx, _seed):
        if idx is None:
            return alone
        x, y = np.vstack([x_base, x_pool[idx]]), np.concatenate([y_base, y_pool[idx]])
        return _classifier(len(y), n).fit(x, y).predict(x_test)

    out = uplift_bootstrap(predict, {"score": lambda p, w: macro_f1(y_test, p, w, labels=classes)}, len(y_pool),
                           len(y_base), len(y_test), seed=seed)
    (low, high), (dlow, dhigh) = out["ci95"], out["ci95_draws"]
    row = (f"| {name} | {len(base)} + {out['synthetic_per_run']} drawn from {len(pool)} | {out['mean']:+.4f} | "
           f"[{low:+.4f}, {high:+.4f}] | [{dlow:+.4f}, {dhigh:+.4f}] | {'pass' if low > 0 else 'fail'} |")
    print(row, flush=True)
    return row


def main_gate(encode, food, others, drug) -> None:
    print(f"| corpus | training set + added real documents | gain | 95 % (draws and holdout: the gate's) | "
          f"95 % (draws only) | gate > 0 |\n|---|---|---|---|---|---|")
    train, test = food[food.split == "train"], food[food.split == "test"]
    gate("fine-food, fresh real", train, others, test, "review", "score", encode)
    gate("fine-food, copies (control)", train, train, test, "review", "score", encode)
    dtrain, dtest = drug[drug.split == "train"].reset_index(drop=True), drug[drug.split == "test"]
    for r in range(3):
        p = np.random.default_rng(r).permutation(len(dtrain))
        half, other = dtrain.iloc[p[:300]], dtrain.iloc[p[300:]]
        gate(f"drug (half {r}), fresh real", half, other, dtest, "review", "rating", encode, real_rows=len(dtrain))
        gate(f"drug (half {r}), copies (control)", half, half, dtest, "review", "rating", encode,
             real_rows=len(dtrain))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fixed-c", action="store_true", help="C = 1 at every training-set size (the old evaluator)")
    ap.add_argument("--gate", action="store_true", help="the report's gain gate with real documents as the synthetic")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(args.threads)
    from synthforge.data.examples import EXAMPLES, _rdataset, html_breaks
    from synthforge.quality.text_metrics import _encoder

    encode = _encoder()
    food = EXAMPLES["fine_food_reviews"][1]()
    everything = _rdataset("modeldata", "training_data")()
    everything["review"] = html_breaks(everything["review"])
    seed_train = food[food.split == "train"]
    others = everything[~everything["review"].isin(set(seed_train["review"]))]
    if args.gate:
        return main_gate(encode, food, others, EXAMPLES["drug_reviews"][1]())
    print("| corpus | training set | gain over the seed alone [95 %] | macro-F1 |\n|---|---|---|---|")
    gains("fine-food", seed_train, others, food[food.split == "test"], "review", "score", [200, 400, 800, 1600],
          encode, fixed_c=args.fixed_c)
    drug = EXAMPLES["drug_reviews"][1]()
    train, test = drug[drug.split == "train"].reset_index(drop=True), drug[drug.split == "test"]
    for r in range(3):
        p = np.random.default_rng(r).permutation(len(train))
        gains(f"drug (half {r})", train.iloc[p[:300]], train.iloc[p[300:]], test, "review", "rating", [150, 300],
              encode, real_rows=len(train), fixed_c=args.fixed_c)


if __name__ == "__main__":
    main()
