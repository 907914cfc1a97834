"""Augmentation uplift: the number a startup decides on. A downstream model trained on the real rows alone and on the
real rows plus a draw of synthetic ones, both scored on the real holdout; repeated over draws and model seeds, reported
as the mean difference with a 95 % interval. One draw moves the difference by ±0.01-0.03 (measured on the drug
reviews, docs/benchmarks.md), so a single number can pass on noise: `min_augmentation_gain` gates the interval's
lower bound (`augmentation_gain_lower`).

10 draws: with 5 the Student-t half-width was 1.24 draw standard deviations (t₀.₉₇₅,₄ / √5), ±0.02-0.025 on the
drug reviews, as wide as the gains themselves; 10 make it 0.72 (t₀.₉₇₅,₉ / √10). A draw costs one model fit per side
(a logistic regression for text, gradient boosting for tables); images keep 5, where a draw trains two CNNs
(image_metrics.py).

Every modality (`uplift_bootstrap`: tables since 2026-12-06, text and images since 2026-12-07) widens that interval
by the evaluation set's own variance: a t-interval over the draws covers only which synthetic rows were drawn and the
model seed, with the holdout fixed, so a gain can "pass" on one lucky holdout. Each run keeps its two models'
holdout predictions; then B = 1,000 times both the runs (with replacement) and the holdout rows (multinomial weights,
with replacement) are resampled and the mean gain recomputed on them (no model is refitted); the 2.5th and 97.5th
percentiles are the interval (`ci95`, what `augmentation_gain_lower` reads). The Student-t interval over the same
runs stays beside it as `ci95_draws`. What neither covers: refitting the generator (one fitted generator made the
synthetic pool; a benchmark that refits over seeds measures that) and the training rows' own sampling.

`uplift` (the draws-only t-interval) stays for benchmarks that compare with figures measured before; `draws` gives
the synthetic draws themselves, which text and images also train their TSTR models on (as many synthetic items as
real ones)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import stats

from .report_model import Metric

RUNS = 10


def interval(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a Student-t interval; a single run has no spread, so its interval is the point."""
    d = np.asarray(diffs, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def draw(n_synthetic: int, n_real: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one synthetic draw as large as the real set: without replacement from a larger pool, a bootstrap
    from a pool no larger (so every run differs)."""
    if n_synthetic > n_real:
        return rng.choice(n_synthetic, n_real, replace=False)
    return rng.choice(n_synthetic, n_synthetic, replace=True)


def draws(n_synthetic: int, n_real: int, seed: int, runs: int = RUNS) -> list[np.ndarray]:
    """The synthetic draws of `uplift_bootstrap` at this seed, in order (the same generator, the same calls): TSTR
    trains on them where the synthetic set is larger than the real one, so its models see what the gain's do."""
    rng = np.random.default_rng(seed)
    return [draw(n_synthetic, n_real, rng) for _ in range(runs)]


def uplift(score: Callable[[np.ndarray | None, int], dict[str, float]], n_synthetic: int, n_real: int, *, seed: int,
           runs: int = RUNS) -> dict:
    """score(indices of the synthetic draw or None for real alone, model seed) -> {"score": holdout score, ...any
    other named scores, e.g. the rare class's F1}. Each run pairs a real-only and an augmented model with the same
    model seed; every named score gets its mean gain and interval ("score"'s at the top level)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(runs):
        idx = draw(n_synthetic, n_real, rng)
        real, augmented = score(None, seed + k), score(idx, seed + k)
        rows.append({"real": real, "augmented": augmented,
                     "gain": {key: augmented[key] - real[key] for key in real}})
    out: dict = {"runs": rows, "synthetic_per_run": n_real if n_synthetic > n_real else n_synthetic}
    for key in rows[0]["gain"]:
        mean, low, high = interval([r["gain"][key] for r in rows])
        part = {"mean": mean, "ci95": [low, high]}
        out.update(part) if key == "score" else out.setdefault("other", {}).update({key: part})
    return out


def real_doubling(score_subset: Callable[[np.ndarray], float | None], full: float, n_real: int, *, seed: int,
                  runs: int = RUNS) -> dict | None:
    """The reference beside a gain: what doubling the real rows gives the same model, i.e. the score of all n real
    rows minus that of a random half of them, over `runs` halves. The augmentation gain doubles the training set
    with synthetic rows; where doubling it with real rows gains nothing (a flat learning curve: the drug reviews'
    300 → 600 lowered macro-F1), a gain floor above 0 asks the synthetic rows to beat real ones. `score_subset`
    (indices of real rows) may return None (a half missing a class): then there is no reference."""
    rng = np.random.default_rng(seed + 1)
    diffs = []
    for _ in range(runs):
        half = score_subset(np.sort(rng.choice(n_real, n_real // 2, replace=False)))
        if half is None:
            return None
        diffs.append(full - half)
    mean, low, high = interval(diffs)
    return {"mean": mean, "ci95": [low, high], "rows": [n_real // 2, n_real], "halves": runs}


def copy_control(score_with_copies: Callable[[np.ndarray], float | None], full: float, n_real: int, *, seed: int,
                 runs: int = RUNS) -> dict | None:
    """The other reference beside a gain: what adding the real rows themselves gains the same model — a bootstrap
    draw of them as large as a synthetic draw, `runs` times. That only reweights the real rows, so a gain no larger
    than this is no evidence of new content: on the drug reviews a copy of the training reviews gained +0.026
    (docs/benchmarks.md), the evaluator sitting in a dip of macro-F1 over its penalty. `score_with_copies` (indices
    of real rows to add) may return None: then there is no reference."""
    rng = np.random.default_rng(seed + 2)
    diffs = []
    for _ in range(runs):
        score = score_with_copies(rng.choice(n_real, n_real, replace=True))
        if score is None:
            return None
        diffs.append(score - full)
    mean, low, high = interval(diffs)
    return {"mean": mean, "ci95": [low, high], "copies": n_real, "runs": runs}


def uplift_metrics(result: dict | None, score_name: str, computed_on: dict) -> dict[str, Metric]:
    """augmentation_gain (mean, interval in detail) and augmentation_gain_lower (what the gate reads)."""
    mean = None if result is None else result["mean"]
    runs = RUNS if result is None else len(result["runs"])
    low = None if result is None else result["ci95"][0]
    # real rows in the synthetic rows' place (real_in_place): each figure's real reference in the report's tables
    in_place = (result or {}).get("real_in_place") or {}
    detail = {**(result or {}), "real_reference": in_place["mean"]} if in_place else result or {}
    lower_ref = {"real_reference": in_place["ci95"][0]} if in_place else {}
    return {
        "augmentation_gain": Metric(name="augmentation_gain", value=mean, lower=-1.0, upper=1.0, higher_is_better=True,
                                    definition=f"{score_name} on the real holdout of a model trained on real + "
                                               f"synthetic rows minus one trained on real rows alone; mean over "
                                               f"{runs} synthetic draws and model seeds", computed_on=computed_on,
                                    detail=detail),
        "augmentation_gain_lower": Metric(name="augmentation_gain_lower", value=low, lower=-1.0, upper=1.0,
                                          higher_is_better=True, definition="lower end of the 95 % interval of "
                                          "the augmentation gain: " + detail.get("interval", "Student-t over the "
                                          "synthetic draws and model seeds, the holdout fixed"),
                                          computed_on=computed_on,
                                          detail={"ci95": detail.get("ci95"), "ci95_draws": detail.get("ci95_draws"),
                                                  **lower_ref}),
    }


BOOTSTRAPS = 1000
CHUNK = 50  # holdout resamples held in memory at once (uplift_bootstrap)


def holdout_weights(n_test: int, boots: int, rng: np.random.Generator) -> np.ndarray:
    """(boots, n_test) multinomial counts: each row is one resample of the holdout with replacement."""
    return rng.multinomial(n_test, np.full(n_test, 1.0 / n_test), size=boots).astype("float64")


def macro_f1(y: np.ndarray, pred: np.ndarray, weights: np.ndarray, labels: list | None = None) -> np.ndarray:
    """Macro-F1 of `pred` against `y` under each row of `weights` (a holdout resample as row counts), vectorised;
    equal to sklearn's f1_score(average="macro", zero_division=0) on the resampled rows when `labels` is None (the
    classes present in that resample's truth or predictions)."""
    y, pred = np.asarray(y, dtype=object), np.asarray(pred, dtype=object)
    classes = labels if labels is not None else sorted(set(y.tolist()) | set(pred.tolist()), key=str)
    f1s, present = [], []
    for c in classes:
        is_y, is_p = (y == c).astype("float64"), (pred == c).astype("float64")
        tp, n_y, n_p = weights @ (is_y * is_p), weights @ is_y, weights @ is_p
        denom = n_y + n_p
        f1s.append(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0))
        present.append(denom > 0 if labels is None else np.ones_like(tp, dtype=bool))
    f1s, present = np.array(f1s), np.array(present)
    return (f1s * present).sum(axis=0) / np.maximum(present.sum(axis=0), 1)


def accuracy(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Accuracy of `pred` against `y` under each row of `weights` (a holdout resample as row counts)."""
    hit = (np.asarray(y) == np.asarray(pred)).astype("float64")
    return (weights @ hit) / weights.sum(axis=1)


def r2(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """R² of `pred` against `y` under each row of `weights` (sklearn's r2_score with sample weights)."""
    y, pred = np.asarray(y, dtype="float64"), np.asarray(pred, dtype="float64")
    shift = y.mean()  # R² does not move with a shift; centring keeps the sums of squares from cancelling
    y, pred = y - shift, pred - shift
    total = weights.sum(axis=1)
    mean = (weights @ y) / total
    ss_res = weights @ (y - pred) ** 2
    ss_tot = weights @ y ** 2 - total * mean ** 2
    return 1.0 - np.divide(ss_res, ss_tot, out=np.zeros_like(ss_res), where=ss_tot > 0)


def uplift_bootstrap(predict: Callable[[np.ndarray | None, int], np.ndarray],
                     scores: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]], n_synthetic: int,
                     n_real: int, n_test: int, *, seed: int, runs: int = RUNS, boots: int = BOOTSTRAPS) -> dict:
    """`uplift` with the holdout's variance in the interval (module docstring). predict(indices of the synthetic
    draw or None for real alone, model seed) -> the model's predictions on the n_test holdout rows; scores: name ->
    f(predictions, weights of shape (k, n_test)) -> k scores ("score" required). Same output as `uplift`, plus
    `ci95_draws` (the Student-t interval over the draws, holdout fixed) per score and `interval` (what it covers).
    The resamples are drawn CHUNK at a time, so memory stays at CHUNK × n_test weights whatever `boots` is."""
    full = np.ones((1, n_test))
    rows, preds = [], []
    for k, idx in enumerate(draws(n_synthetic, n_real, seed, runs)):
        p_real, p_aug = predict(None, seed + k), predict(idx, seed + k)
        preds.append((p_real, p_aug))
        real = {key: float(f(p_real, full)[0]) for key, f in scores.items()}
        augmented = {key: float(f(p_aug, full)[0]) for key, f in scores.items()}
        rows.append({"real": real, "augmented": augmented,
                     "gain": {key: augmented[key] - real[key] for key in scores}})
    # bootstrap b: the runs picks[b] (with replacement) scored on holdout resample b, the same for every run
    boot_rng = np.random.default_rng(seed + 7)
    picks = np.random.default_rng(seed + 8).integers(0, runs, size=(boots, runs))
    boot_gains = {key: np.empty((runs, boots)) for key in scores}
    for lo in range(0, boots, CHUNK):
        weights = holdout_weights(n_test, min(CHUNK, boots - lo), boot_rng)
        for k, (p_real, p_aug) in enumerate(preds):
            for key, f in scores.items():
                boot_gains[key][k, lo:lo + len(weights)] = f(p_aug, weights) - f(p_real, weights)
    out: dict = {"runs": rows, "synthetic_per_run": n_real if n_synthetic > n_real else n_synthetic,
                 "interval": f"percentile interval of {boots} resamples of both the runs and the {n_test} holdout "
                             f"rows (with replacement): synthetic draw, model seed and evaluation set; one fitted "
                             f"generator, so refits are not in it",
                 "bootstraps": boots}
    cols = np.arange(boots)
    for key in scores:
        mean, low, high = interval([r["gain"][key] for r in rows])
        resampled = boot_gains[key][picks, cols[:, None]].mean(axis=1)
        part = {"mean": mean, "ci95": [float(np.percentile(resampled, 2.5)), float(np.percentile(resampled, 97.5))],
                "ci95_draws": [low, high]}
        out.update(part) if key == "score" else out.setdefault("other", {}).update({key: part})
    return out


def real_in_place(predict: Callable[[np.ndarray, np.ndarray | None, int], np.ndarray],
                  scores: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]], n_real: int, n_test: int, *,
                  seed: int, runs: int = RUNS, boots: int = BOOTSTRAPS) -> dict:
    """The gain gate's own interval with real rows in the synthetic rows' place: a random half of the real rows
    trains, and draws as large as it from the other half are added (`uplift_bootstrap`: the same draws, resamples
    and interval). What a generator as good as fresh real rows would score, so whether this holdout can show a gain
    at all: on the drug reviews (379 held out) fresh real reviews' lower end was −0.020 to −0.038 at three halves,
    on the fine-food reviews +0.002 (docs/benchmarks.md). predict(training indices, indices of the real rows added
    or None, model seed) -> predictions on the holdout."""
    perm = np.random.default_rng(seed + 3).permutation(n_real)
    base, other = np.sort(perm[:n_real // 2]), np.sort(perm[n_real // 2:])
    out = uplift_bootstrap(lambda idx, s: predict(base, None if idx is None else other[idx], s), scores, len(other),
                           len(base), n_test, seed=seed + 3, runs=runs, boots=boots)
    return {"mean": out["mean"], "ci95": out["ci95"], "ci95_draws": out["ci95_draws"],
            "rows": [len(base), out["synthetic_per_run"]], "runs": runs}
