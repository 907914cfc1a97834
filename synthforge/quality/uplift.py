"""Augmentation uplift: the number a startup decides on. A downstream model trained on the real rows alone and on the
real rows plus a draw of synthetic ones, both scored on the real holdout; repeated over draws and model seeds, reported
as the mean difference with a 95 % Student-t interval. One draw moves the difference by ±0.01-0.03 (measured on the
drug reviews, docs/benchmarks.md), so a single number can pass on noise: `min_augmentation_gain` gates the interval's
lower bound (`augmentation_gain_lower`).

10 draws: with 5 the interval's half-width was 1.24 draw standard deviations (t₀.₉₇₅,₄ / √5), ±0.02-0.025 on the
drug reviews, as wide as the gains themselves; 10 make it 0.72 (t₀.₉₇₅,₉ / √10). More draws narrow the interval
around the same mean, so they pass a gain that is there more often and one that is not no more often. A draw costs
one model fit per side (a logistic regression for text, gradient boosting for tables); images keep 5, where a draw
trains two CNNs (image_metrics.py)."""

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


def uplift_metrics(result: dict | None, score_name: str, computed_on: dict) -> dict[str, Metric]:
    """augmentation_gain (mean, interval in detail) and augmentation_gain_lower (what the gate reads)."""
    mean = None if result is None else result["mean"]
    runs = RUNS if result is None else len(result["runs"])
    low = None if result is None else result["ci95"][0]
    detail = result or {}
    return {
        "augmentation_gain": Metric(name="augmentation_gain", value=mean, lower=-1.0, upper=1.0, higher_is_better=True,
                                    definition=f"{score_name} on the real holdout of a model trained on real + "
                                               f"synthetic rows minus one trained on real rows alone; mean over "
                                               f"{runs} synthetic draws and model seeds", computed_on=computed_on,
                                    detail=detail),
        "augmentation_gain_lower": Metric(name="augmentation_gain_lower", value=low, lower=-1.0, upper=1.0,
                                          higher_is_better=True, definition="lower end of the 95 % Student-t "
                                          "interval of the augmentation gain", computed_on=computed_on,
                                          detail={"ci95": detail.get("ci95")}),
    }
