"""Detection: how well a classifier tells real rows from synthetic rows (ROC AUC).

0.5 means indistinguishable, 1.0 means every row is recognised. Rows are capped with a seeded
sample (equal numbers of real and synthetic rows) so the cost does not grow with the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits  # ships with scikit-learn


from .report_model import Metric

FOLDS = 3


def one_thread():
    """Run models on one OpenMP/BLAS thread.

    On a small, shared machine OpenMP workers spin-wait for busy cores: with another process
    training, HistGradientBoosting got ~100x slower with 2 threads than with 1. One thread keeps
    the cost predictable (and the results do not depend on the thread count).
    """
    return threadpool_limits(limits=1)


def model_matrix(frames: list[pd.DataFrame], kinds: dict[str, str]) -> list[np.ndarray]:
    """Float matrices for tree models: numbers as is, datetimes as days, categories as codes.

    Codes are shared across the frames (factorised on their concatenation, most frequent
    first) so the same category gets the same number everywhere; missing stays NaN, which
    HistGradientBoosting handles natively.
    """
    sizes = [len(f) for f in frames]
    columns = []
    for col, kind in kinds.items():
        joined = pd.concat([f[col] for f in frames], ignore_index=True)
        if kind == "numerical":
            values = pd.to_numeric(joined, errors="coerce").to_numpy("float64", na_value=np.nan)
        elif kind == "datetime":
            dt = pd.to_datetime(joined, errors="coerce")
            if getattr(dt.dt, "tz", None) is not None:
                dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
            ns = dt.astype("datetime64[ns]")
            values = ns.to_numpy().view("int64") / 86_400e9
            values[ns.isna().to_numpy()] = np.nan
        else:
            counts = joined.value_counts(dropna=True)
            rank = pd.Series(np.arange(len(counts), dtype="float64"), index=counts.index)
            values = joined.map(rank).to_numpy("float64", na_value=np.nan)
        columns.append(values)
    matrix = np.column_stack(columns) if columns else np.zeros((sum(sizes), 0))
    matrix[:, np.isnan(matrix).all(axis=0)] = 0.0  # HGB cannot bin an all-missing feature
    bounds = np.cumsum([0] + sizes)
    return [matrix[bounds[i]:bounds[i + 1]] for i in range(len(frames))]


def _content_folds(x: np.ndarray, seed: int) -> np.ndarray:
    """Fold number per row, equal rows always in the same fold.

    With plain K-fold a synthetic row that copies a real row lands in training with one label
    and in test with the other; the model then predicts the wrong class for copies and the AUC
    drops far below 0.5. Grouping identical rows makes copies score 0.5 (indistinguishable).
    """
    hashes = pd.util.hash_pandas_object(pd.DataFrame(x), index=False).to_numpy()
    unique, inverse = np.unique(hashes, return_inverse=True)
    rng = np.random.default_rng(seed)
    return (rng.permutation(len(unique)) % FOLDS)[inverse]


def seeded_cap(df: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most cap rows, drawn without replacement with a fixed seed."""
    if len(df) <= cap:
        return df
    return df.sample(n=cap, random_state=seed)


def detection_metric(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str],
                     *, max_rows: int, seed: int) -> Metric:
    """Mean ROC AUC over stratified 3-fold CV of a HistGradientBoosting real-vs-synthetic model."""
    per_side = max(1, min(len(real), len(synthetic), max_rows // 2))
    r = seeded_cap(real, per_side, seed)
    s = seeded_cap(synthetic, per_side, seed + 1)
    computed_on = {"real_rows": len(r), "synthetic_rows": len(s),
                   "sampled": len(r) < len(real) or len(s) < len(synthetic),
                   "cap": per_side, "seed": seed, "folds": FOLDS,
                   "model": "HistGradientBoostingClassifier(max_iter=100)"}
    definition = ("mean ROC AUC of a 3-fold cross-validated HistGradientBoosting classifier "
                  "separating real from synthetic rows (equal-size seeded samples; identical "
                  "rows share a fold)")
    if len(r) < FOLDS * 2 or len(s) < FOLDS * 2 or not kinds:
        return Metric(name="detection_auc", value=None, lower=0.0, upper=1.0,
                      higher_is_better=False, definition=definition, computed_on=computed_on,
                      detail={"reason": "too few rows or no columns"})
    xr, xs = model_matrix([r, s], kinds)
    x = np.vstack([xr, xs])
    y = np.r_[np.zeros(len(xr)), np.ones(len(xs))]
    aucs = []
    fold = _content_folds(x, seed)
    if len(np.unique(fold)) < FOLDS:  # fewer distinct rows than folds (e.g. every column constant): no CV
        return Metric(name="detection_auc", value=None, lower=0.0, upper=1.0, higher_is_better=False,
                      definition=definition, computed_on=computed_on,
                      detail={"reason": "fewer distinct rows than folds"})
    with one_thread():
        for k in range(FOLDS):
            train, test = fold != k, fold == k
            model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False,
                                                   random_state=seed)
            model.fit(x[train], y[train])
            aucs.append(float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])))
    return Metric(name="detection_auc", value=float(np.mean(aucs)), lower=0.0, upper=1.0,
                  higher_is_better=False, definition=definition, computed_on=computed_on,
                  detail={"fold_auc": aucs, "ideal": 0.5})


def detection_vs_holdout(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None,
                         kinds: dict[str, str], *, max_rows: int, seed: int) -> Metric | None:
    """`detection_auc` with the real holdout as the real side instead of the training rows, beside its reference:
    the same classifier telling the real training rows from the holdout (what real data scores: ≈ 0.5 when the split
    is random). Both sides are capped at the holdout's size, so the cost is bounded by it. None without a holdout of
    2 × FOLDS rows."""
    if holdout is None or len(holdout) < FOLDS * 2 or not kinds:
        return None
    syn = detection_metric(holdout, synthetic, kinds, max_rows=max_rows, seed=seed)
    ref = detection_metric(holdout, train, kinds, max_rows=max_rows, seed=seed)
    on = {"holdout_rows": syn.computed_on["real_rows"], "synthetic_rows": syn.computed_on["synthetic_rows"],
          "train_rows": ref.computed_on["synthetic_rows"], "seed": seed, "folds": FOLDS,
          "model": syn.computed_on["model"]}
    return Metric(name="detection_auc_vs_holdout", value=syn.value, lower=0.0, upper=1.0, higher_is_better=False,
                  definition="detection AUC (as detection_auc) of synthetic rows against the real holdout rows; "
                             "real_reference: the real training rows against the same holdout",
                  computed_on=on, detail={"real_reference": ref.value, "fold_auc": syn.detail.get("fold_auc"),
                                          "reference_fold_auc": ref.detail.get("fold_auc"), "ideal": 0.5})
