"""Privacy against the training rows, judged with a holdout of real rows never trained on.

* exact_copy_share: share of synthetic rows equal (on every evaluated column, missing equals
  missing) to some training row. All rows are used (hashing is cheap). Its baseline is the
  holdout's own share: on a table of a few categories many real unseen rows equal a training row.
* exact_copy_excess: exact_copy_share minus the holdout's own share (needs a holdout); what a
  generator copies beyond what honest real data would.
* close_share_excess (needs a holdout): distances to the FULL training set. The holdout's own
  distances to their closest training row give a threshold, the 5th percentile of its positive
  distances (so a table where many unseen rows equal a training row still has a threshold above
  0); the share of synthetic rows at or under it minus the holdout's own share (≈ 5 % plus the
  holdout rows at distance 0). An honest generator scores ≈ 0; copies, nudged or not, score up to
  1 minus the holdout's share.
* near_copy_excess: the same at the holdout's 1st percentile of positive distances: rows that
  sit on a training row closer than 99 % of unseen real rows that do not equal one.
* dcr_share: share of synthetic rows whose distance to the closest training row is smaller
  than to the closest holdout row (ties count half), with training subsampled to the holdout's
  size as mostlyai-qa does (kept for comparability). 0.5 is ideal, but it is a weak copy check:
  verbatim copies of the training rows score only ≈ 0.62 at a 20 % holdout (credit_data), since
  three quarters of the copied rows are not in the subsample they are compared with.
  `detail.ci95`: its 95 % interval over the synthetic rows drawn.
* nndr: median over synthetic rows of d1/d2, the distances to the nearest and second-nearest
  rows of the FULL training set (0 when d2 is 0); `detail.holdout_nndr` is the holdout's own.
  Small values mean a synthetic row sits on one training row.

Distances are Euclidean on a normalised encoding fitted on the training data: numbers and
datetimes divided by their 1%-99% quantile range (missing -> 0 plus a missing indicator),
categories one-hot with weight 1/sqrt(2) so a mismatch costs exactly 1 (top 100 categories per
column; rarer ones share an "other" slot).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from .detection import one_thread, seeded_cap
from .report_model import Metric

MAX_CATEGORIES = 100
PRIVACY_MAX_ROWS = 10_000  # per frame; the kNN search is quadratic-ish in rows
HIST_BINS = 30


def _canonical(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """One representation per value so int 1, float 1.0 and True compare equal across frames."""
    out = {}
    for col, kind in kinds.items():
        s = df[col]
        if kind == "datetime":
            dt = pd.to_datetime(s, errors="coerce")
            if getattr(dt.dt, "tz", None) is not None:
                dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
            out[col] = dt.astype("datetime64[ns]")
        elif kind == "boolean" and (flags := _as_boolean(s)) is not None:
            out[col] = flags
        elif kind == "numerical" or pd.api.types.is_numeric_dtype(s):
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
        else:
            out[col] = s.astype("object").where(s.notna(), None).map(
                lambda v: None if v is None else str(v))
    return pd.DataFrame(out, index=df.index)


def _as_boolean(s: pd.Series) -> pd.Series | None:
    """0.0/1.0/NaN whatever the dtype (bool, object, nullable boolean); None if not boolean."""
    try:
        return s.astype("boolean").astype("float64")
    except (TypeError, ValueError):
        return None


def _row_hashes(df: pd.DataFrame, kinds: dict[str, str]) -> pd.Series:
    return pd.util.hash_pandas_object(_canonical(df, kinds), index=False)


def exact_copy_share(train: pd.DataFrame | set, synthetic: pd.DataFrame, kinds: dict[str, str]) -> float | None:
    """`train`: the training rows, or the set of their row hashes when several frames are checked against them."""
    if len(synthetic) == 0 or not kinds:
        return None
    seen = train if isinstance(train, set) else set(_row_hashes(train, kinds).to_numpy())
    return float(_row_hashes(synthetic, kinds).isin(seen).mean())


class _Encoder:
    """Normalised numeric encoding fitted on training rows (see module docstring)."""

    def __init__(self, train: pd.DataFrame, kinds: dict[str, str]):
        self.kinds = kinds
        self.scale: dict[str, tuple[float, float]] = {}
        self.categories: dict[str, list] = {}
        canon = _canonical(train, kinds)
        for col, kind in kinds.items():
            if kind in ("numerical", "datetime"):
                v = self._numbers(canon[col], kind)
                v = v[~np.isnan(v)]
                if len(v) == 0:
                    self.scale[col] = (0.0, 1.0)
                    continue
                lo, hi = np.quantile(v, [0.01, 0.99])
                width = hi - lo if hi > lo else (v.max() - v.min() or 1.0)
                self.scale[col] = (float(lo), float(width))
            else:
                top = canon[col].value_counts(dropna=True).index[:MAX_CATEGORIES]
                self.categories[col] = list(top)

    @staticmethod
    def _numbers(s: pd.Series, kind: str) -> np.ndarray:
        if kind == "datetime":
            v = s.to_numpy().view("int64").astype("float64")
            v[s.isna().to_numpy()] = np.nan
            return v
        return s.to_numpy("float64", na_value=np.nan)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        canon = _canonical(df, self.kinds)
        blocks = []
        for col, kind in self.kinds.items():
            if col in self.scale:
                lo, width = self.scale[col]
                v = (self._numbers(canon[col], kind) - lo) / width
                missing = np.isnan(v)
                blocks += [np.where(missing, 0.0, v), missing.astype("float64")]
            else:
                cats = self.categories[col]
                index = pd.Index(cats)
                pos = index.get_indexer(canon[col].where(canon[col].notna(), "\x00<missing>"))
                other = len(cats)
                pos = np.where(pos < 0, other, pos)
                missing = canon[col].isna().to_numpy()
                onehot = np.zeros((len(df), len(cats) + 2))
                onehot[np.arange(len(df)), np.where(missing, other + 1, pos)] = 1.0
                blocks.append(onehot / np.sqrt(2.0))
        return np.column_stack(blocks) if blocks else np.zeros((len(df), 0))


ZERO = 1e-7  # distances below it are 0: sklearn's brute search computes |x|² + |y|² - 2x·y, off by ~1e-8 for equal rows


def _snap(d: np.ndarray) -> np.ndarray:
    return np.where(d < ZERO, 0.0, d)


def _nearest(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    with one_thread():
        nn = NearestNeighbors(n_neighbors=k, algorithm="auto").fit(reference)
        return _snap(nn.kneighbors(query, return_distance=True)[0])


def _histograms(d_train: np.ndarray, d_hold: np.ndarray | None) -> dict:
    both = d_train if d_hold is None else np.concatenate([d_train, d_hold])
    hi = float(np.quantile(both, 0.99)) if len(both) else 1.0
    edges = np.linspace(0.0, hi if hi > 0 else 1.0, HIST_BINS + 1)
    out = {"edges": edges.tolist(),
           "train": np.histogram(np.clip(d_train, 0, edges[-1]), edges)[0].tolist()}
    if d_hold is not None:
        out["holdout"] = np.histogram(np.clip(d_hold, 0, edges[-1]), edges)[0].tolist()
    return out


def copy_metrics(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None,
                 kinds: dict[str, str]) -> tuple[Metric, Metric]:
    """(exact_copy_share with the holdout's own share beside it, exact_copy_excess)."""
    seen = set(_row_hashes(train, kinds).to_numpy()) if kinds else set()
    copies = exact_copy_share(seen, synthetic, kinds)
    baseline = exact_copy_share(seen, holdout, kinds) if holdout is not None and len(holdout) else None
    on = {"train_rows": len(train), "synthetic_rows": len(synthetic),
          "holdout_rows": len(holdout) if holdout is not None else 0, "sampled": False, "cap": None}
    share = Metric(name="exact_copy_share", value=copies, lower=0.0, upper=1.0, higher_is_better=False,
                   definition="share of synthetic rows identical to some training row "
                              "(all evaluated columns, missing == missing)",
                   computed_on=on, detail={"holdout_share": baseline})
    excess = None if copies is None or baseline is None else copies - baseline
    return share, Metric(name="exact_copy_excess", value=excess, lower=-1.0, upper=1.0, higher_is_better=False,
                         definition="exact-copy share of the synthetic rows minus that of real holdout rows "
                                    "(which were never trained on); ≤ 0 means no more copies than honest data",
                         computed_on=on, detail={"holdout_share": baseline, "synthetic_share": copies})


def _share_interval(closer: np.ndarray) -> list[float]:
    """95 % normal interval of the DCR share over the synthetic rows drawn (these training and holdout samples fixed):
    on 2,000 rows it is about ±0.02, so a share of 0.53 on a small table does not by itself tell a generator that
    leans towards its training rows from one that does not (ames, docs/benchmarks.md)."""
    mean = float(closer.mean())
    half = 1.96 * float(closer.std(ddof=1)) / np.sqrt(len(closer)) if len(closer) > 1 else 0.0
    return [mean - half, mean + half]


def _at_or_under(d: np.ndarray, threshold: float) -> float:
    return float(np.mean(d <= threshold)) if len(d) else float("nan")


def _holdout_threshold(d_real: np.ndarray, q: float) -> float:
    """q-th quantile of the holdout's positive distances to training (0 if every holdout row equals a training row):
    positive, so that nudged copies (distance 1e-5) still count on a table where a fifth of unseen rows equal a
    training row and the plain 5th percentile is 0."""
    positive = d_real[d_real > 0]
    return float(np.quantile(positive, q)) if len(positive) else 0.0


def _excess_metric(name: str, q: float, d_syn: np.ndarray, d_real: np.ndarray, on: dict) -> Metric:
    threshold = _holdout_threshold(d_real, q)
    syn, real = _at_or_under(d_syn, threshold), _at_or_under(d_real, threshold)
    label = {"close_share_excess": "close", "near_copy_excess": "near-copy"}[name]
    return Metric(name=name, value=syn - real, lower=-1.0, upper=1.0, higher_is_better=False,
                  definition=f"share of synthetic rows at most the real holdout's {q:.0%} quantile of positive "
                             f"distance-to-training away from a training row (full training set), minus the holdout's "
                             f"own share; ≈ 0 for honest output, up to 1 for copies, nudged or not",
                  computed_on=on,
                  detail={"synthetic_share": syn, "holdout_share": real, "quantile": q, "threshold": threshold,
                          "kind": label, "holdout_zero_share": float(np.mean(d_real == 0))})


def _nndr(d2: np.ndarray) -> np.ndarray:
    return np.divide(d2[:, 0], d2[:, 1], out=np.zeros(len(d2)), where=d2[:, 1] > 0)


CLOSE_QUANTILE = 0.05
NEAR_COPY_QUANTILE = 0.01
FULL_TRAIN_MAX_ROWS = 200_000  # the reference set of the full-train distances; beyond it a seeded sample


def privacy_metrics(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None,
                    kinds: dict[str, str], *, max_rows: int, seed: int
                    ) -> tuple[Metric, Metric, Metric | None, Metric | None, list[str]]:
    """(dcr_share, nndr, close_share_excess, near_copy_excess, notes); the exact-copy figures are copy_metrics'.
    The last two are None without a holdout."""
    notes: list[str] = []
    cap = max(2, min(max_rows, PRIVACY_MAX_ROWS))
    per_side = min(len(train), len(holdout)) if holdout is not None else len(train)
    per_side = min(per_side, cap)
    t = seeded_cap(train, per_side, seed)
    h = seeded_cap(holdout, per_side, seed + 2) if holdout is not None else None
    s = seeded_cap(synthetic, cap, seed + 3)
    full = seeded_cap(train, FULL_TRAIN_MAX_ROWS, seed + 4)
    sampled = len(t) < len(train) or len(s) < len(synthetic) or (
        holdout is not None and len(h) < len(holdout))
    if sampled:
        notes.append(f"privacy distances: DCR share on {per_side} training/holdout rows and {len(s)} "
                     f"synthetic, seed {seed}; copy distances against {len(full)} training rows")
    on = {"train_rows": len(t), "holdout_rows": len(h) if h is not None else 0,
          "synthetic_rows": len(s), "sampled": sampled, "cap": cap, "seed": seed}
    on_full = {**on, "train_rows": len(full), "train": "full" if len(full) == len(train) else "sampled"}

    dcr_def = ("share of synthetic rows with d(closest training row) < d(closest holdout row), training subsampled "
               "to the holdout's size (mostlyai-qa's DCR share); ties count 1/2; 0.5 ideal, verbatim copies ≈ 0.6")
    nndr_def = "median over synthetic rows of d1/d2 to the two nearest rows of the full training set (0 if d2 = 0)"
    if len(t) < 2 or len(s) == 0 or not kinds:
        none = dict(value=None, lower=0.0, upper=1.0, computed_on=on)
        return (Metric(name="dcr_share", higher_is_better=None, definition=dcr_def, **none),
                Metric(name="nndr", higher_is_better=True, definition=nndr_def, **none), None, None, notes)

    enc = _Encoder(full, kinds)
    xfull, xt, xs = enc.transform(full), enc.transform(t), enc.transform(s)
    with one_thread():
        index_full = NearestNeighbors(n_neighbors=2).fit(xfull)
        d_full2 = _snap(index_full.kneighbors(xs, return_distance=True)[0])
    ratio = _nndr(d_full2)
    nndr_detail = {"quantiles": {str(q): float(np.quantile(ratio, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}}
    if h is None:
        notes.append("no holdout given: DCR share and the close/near-copy shares not computed")
        nndr_m = Metric(name="nndr", value=float(np.median(ratio)), lower=0.0, upper=1.0, higher_is_better=True,
                        definition=nndr_def, computed_on=on_full, detail=nndr_detail)
        dcr_m = Metric(name="dcr_share", value=None, lower=0.0, upper=1.0, higher_is_better=None,
                       definition=dcr_def, computed_on=on,
                       detail={"reason": "no holdout", "histogram": _histograms(d_full2[:, 0], None)})
        return dcr_m, nndr_m, None, None, notes

    # 1. the baseline: how close unseen real rows (all of the holdout, capped) come to the full training set
    hold_all = seeded_cap(holdout, cap, seed + 5)
    with one_thread():
        d_real2 = _snap(index_full.kneighbors(enc.transform(hold_all), return_distance=True)[0])
    on_full["holdout_rows"] = len(hold_all)
    d_syn, d_real = d_full2[:, 0], d_real2[:, 0]
    # 2. close and near-copy shares at thresholds read from the holdout's distances
    close_m = _excess_metric("close_share_excess", CLOSE_QUANTILE, d_syn, d_real, on_full)
    near_m = _excess_metric("near_copy_excess", NEAR_COPY_QUANTILE, d_syn, d_real, on_full)
    real_ratio = _nndr(d_real2)
    nndr_m = Metric(name="nndr", value=float(np.median(ratio)), lower=0.0, upper=1.0, higher_is_better=True,
                    definition=nndr_def, computed_on=on_full,
                    detail={**nndr_detail, "holdout_nndr": float(np.median(real_ratio))})
    # 3. DCR share as mostlyai-qa computes it: training subsampled to the holdout's size
    xh = enc.transform(h)
    d_train = _nearest(xt, xs, 1)[:, 0]
    d_hold = _nearest(xh, xs, 1)[:, 0]
    d_real_sub = _nearest(xt, xh, 1)[:, 0]
    closer = (d_train < d_hold) + 0.5 * (d_train == d_hold)  # per synthetic row: 1, ½ (tie) or 0
    share = float(closer.mean())
    dcr_m = Metric(name="dcr_share", value=share, lower=0.0, upper=1.0, higher_is_better=None,
                   definition=dcr_def, computed_on=on,
                   detail={"ideal": 0.5, "ci95": _share_interval(closer), "ties": float(np.mean(d_train == d_hold)),
                           "median_dcr_train": float(np.median(d_train)),
                           "median_dcr_holdout": float(np.median(d_hold)),
                           "median_dcr_real_holdout": float(np.median(d_real_sub)),
                           "median_dcr_full_train": float(np.median(d_syn)),
                           "median_dcr_real_full_train": float(np.median(d_real)),
                           "histogram": _histograms(d_train, d_hold)})
    return dcr_m, nndr_m, close_m, near_m, notes
