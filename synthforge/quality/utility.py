"""Utility: train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

Both models are HistGradientBoosting with the same settings and are tested on the same real
rows: the holdout when given, otherwise a seeded 30 % split of the real frame (whose rows the
generator did see, which flatters TSTR; the report says so).

TSTR trains on as many synthetic rows as TRTR has real ones (a seeded subsample of the synthetic
table; all of it when it is smaller): more rows alone lift a model's score, so a synthetic table
larger than the real one would flatter the ratio (the credit recipe writes 10,000 rows against
3,563 real training rows). computed_on names both sizes and the synthetic rows available.

value = max(TSTR, 0) / TRTR, clipped to [0, 1.5]; None when TRTR <= 0.01 (the task is not
learnable from real data, so the ratio means nothing). Above 1 happens by chance on small data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, f1_score, r2_score

from .detection import model_matrix, one_thread, seeded_cap
from .report_model import Metric
from .uplift import macro_f1, r2, uplift_bootstrap, uplift_metrics

RATIO_CLIP = 1.5
MIN_TRTR = 0.01
MAX_CLASSES = 20


def task_type(series: pd.Series, kind: str) -> str:
    """classification for categorical/boolean targets or few distinct non-float values."""
    if kind in ("categorical", "boolean"):
        return "classification"
    if not pd.api.types.is_float_dtype(series) and series.nunique(dropna=True) <= MAX_CLASSES:
        return "classification"
    return "regression"


def _labels(frames: list[pd.Series]) -> list[np.ndarray]:
    """Shared string labels so int/float/bool spellings of a class agree across frames."""
    def canon(v):
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (int, float, np.integer, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return [s.map(canon).to_numpy(dtype=object) for s in frames]


def _fit_score(task: str, x_train, y_train, x_test, y_test, seed: int) -> dict:
    if task == "classification":
        if len(set(y_train)) < 2:
            return {"score": 0.0, "accuracy": 0.0, "note": "training labels have a single class"}
        model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
        pred = model.fit(x_train, y_train).predict(x_test)
        return {"score": float(f1_score(y_test, pred, average="macro")),
                "accuracy": float(accuracy_score(y_test, pred))}
    model = HistGradientBoostingRegressor(max_iter=100, random_state=seed)
    pred = model.fit(x_train, y_train).predict(x_test)
    return {"score": float(r2_score(y_test, pred))}


def utility_metric(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None,
                   kinds: dict[str, str], target: str, *, max_rows: int, seed: int) -> tuple[Metric, list[str]]:
    notes = []
    task = task_type(real[target], kinds[target])
    real = real[real[target].notna()]
    synthetic = synthetic[synthetic[target].notna()]
    if holdout is not None:
        test, train_real = holdout[holdout[target].notna()], real
        test_source = "holdout"
    else:
        test = real.sample(frac=0.3, random_state=seed)
        train_real = real.drop(index=test.index)
        test_source = "30% seeded split of the training data (seen by the generator)"
        notes.append("utility: no holdout, tested on a seeded 30% split of the training data")
    cap = max(10, max_rows)
    sampled = max(len(train_real), len(synthetic), len(test)) > cap
    if sampled:
        notes.append(f"utility: rows capped at {cap} per frame, seed {seed}")
    train_real = seeded_cap(train_real, cap, seed)
    # as many synthetic training rows as real ones (module docstring): equal sizes, or the ratio flatters
    train_syn = seeded_cap(synthetic, len(train_real), seed + 1)
    test = seeded_cap(test, cap, seed + 2)
    features = {c: k for c, k in kinds.items() if c != target}
    x_real, x_syn, x_test = model_matrix([train_real, train_syn, test], features)
    if task == "classification":
        y_real, y_syn, y_test = _labels([train_real[target], train_syn[target], test[target]])
    else:
        y_real, y_syn, y_test = (pd.to_numeric(f[target], errors="coerce").to_numpy("float64")
                                 for f in (train_real, train_syn, test))
    score_name = "macro-F1" if task == "classification" else "R²"
    definition = (f"TSTR/TRTR ratio of {score_name} (HistGradientBoosting), tested on real rows, TSTR trained on "
                  f"a seeded subsample of the synthetic rows as large as TRTR's real training rows; "
                  f"max(TSTR,0)/TRTR clipped to [0, {RATIO_CLIP}]")
    on = {"train_real_rows": len(train_real), "train_synthetic_rows": len(train_syn),
          "synthetic_rows_available": len(synthetic), "size_matched": len(train_syn) == len(train_real),
          "test_rows": len(test), "test_on": test_source, "target": target, "task": task,
          "sampled": sampled,
          "cap": cap, "seed": seed}
    if len(test) < 5 or len(train_real) < 5 or len(train_syn) < 5 or not features:
        why = "too few rows" if features else "no column besides the target to predict it from"
        return Metric(name="utility", value=None, lower=0.0, upper=RATIO_CLIP,
                      higher_is_better=True, definition=definition, computed_on=on,
                      detail={"reason": why}), notes + [f"utility: {why}"]
    with one_thread():
        tstr = _fit_score(task, x_syn, y_syn, x_test, y_test, seed)
        trtr = _fit_score(task, x_real, y_real, x_test, y_test, seed)
    ratio = None
    if trtr["score"] > MIN_TRTR:
        ratio = float(np.clip(max(tstr["score"], 0.0) / trtr["score"], 0.0, RATIO_CLIP))
    else:
        notes.append(f"utility: real-data score {trtr['score']:.3f} too low for a ratio")
    return Metric(name="utility", value=ratio, lower=0.0, upper=RATIO_CLIP,
                  higher_is_better=True, definition=definition, computed_on=on,
                  detail={"score": score_name, "tstr": tstr, "trtr": trtr}), notes


def uplift_on_target(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None,
                     kinds: dict[str, str], target: str, *, max_rows: int, seed: int) -> dict[str, Metric]:
    """Augmentation uplift (uplift.py) of the target's task with gradient boosting; for classification also the
    F1 of the real training rows' rarest class (what `balance` is asked for)."""
    task = task_type(real[target], kinds[target])
    real = seeded_cap(real[real[target].notna()], max(10, max_rows), seed)
    synthetic = synthetic[synthetic[target].notna()]
    features = {c: k for c, k in kinds.items() if c != target}
    on = {"target": target, "task": task, "train_real_rows": len(real), "test_on": "holdout"}
    if holdout is None or not features or min(len(real), len(synthetic)) < 5:
        return uplift_metrics(None, "score", on)
    test = seeded_cap(holdout[holdout[target].notna()], max(10, max_rows), seed + 2)
    x_real, x_syn, x_test = model_matrix([real, synthetic, test], features)
    if task == "classification":
        y_real, y_syn, y_test = _labels([real[target], synthetic[target], test[target]])
        counts = pd.Series(y_real).value_counts()
        rare = str(counts.index[-1])
    else:
        y_real, y_syn, y_test = (pd.to_numeric(f[target], errors="coerce").to_numpy("float64")
                                 for f in (real, synthetic, test))

    real_alone: dict = {}

    def predict(idx, model_seed: int) -> np.ndarray:
        # without early stopping gradient boosting draws nothing at random: the real-only model is the same at every
        # seed, fitted once; the runs differ by their synthetic draws (and, in the interval, the holdout resample)
        if idx is None and "pred" in real_alone:
            return real_alone["pred"]
        x = x_real if idx is None else np.vstack([x_real, x_syn[idx]])
        y = y_real if idx is None else np.concatenate([y_real, y_syn[idx]])
        cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
        pred = cls(max_iter=100, early_stopping=False, random_state=model_seed).fit(x, y).predict(x_test)
        if idx is None:
            real_alone["pred"] = pred
        return pred

    if task == "regression":
        scores = {"score": lambda p, w: r2(y_test, p, w)}
    else:
        scores = {"score": lambda p, w: macro_f1(y_test, p, w),
                  f"f1_{rare}": lambda p, w: macro_f1(y_test, p, w, labels=[rare])}
    with one_thread():
        result = uplift_bootstrap(predict, scores, len(synthetic), len(real), len(test), seed=seed)
    return uplift_metrics(result, "macro-F1" if task == "classification" else "R²",
                          on | {"test_rows": len(test), "synthetic_rows": len(synthetic)})
