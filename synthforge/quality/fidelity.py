"""Fidelity: column shapes, column-pair trends and their mean.

The definitions reproduce sdmetrics' QualityReport (0.32) exactly, but vectorised:

* column shapes: KSComplement (1 - two-sample KS statistic) for numerical/datetime columns,
  TVComplement (1 - total variation distance) for categorical/boolean columns; NaNs dropped.
* pair trends: CorrelationSimilarity (1 - |r_real - r_synth| / 2, Pearson on pairwise
  complete rows) for two continuous columns, ContingencySimilarity
  (1 - TVD of the joint frequency table, NaN kept as a category) otherwise; in a mixed pair the
  continuous column is cut into np.histogram_bin_edges bins (10 bins; real and synthetic each
  with their own edges, np.digitize codes, NaN lands in the last code), as sdmetrics does.
  Only pairs that are related in the real data contribute to the average, as in sdmetrics:
  |r_real| > 0.5 for correlation pairs, Cramér's V(real) > 0.3 for contingency pairs.
* overall: mean of the two property scores (NaN ignored).

sdmetrics subsamples every contingency pair to 50,000 unseeded rows when either table is
larger; this module always uses every row, so it matches sdmetrics exactly up to 50,000 rows.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd

from .expectations import SHARE_MAX_CATEGORIES, SHARE_MIN_COUNT, outward
from .report_model import Metric

CORRELATION_THRESHOLD = 0.5   # sdmetrics DEFAULT_REAL_CORRELATION_THRESHOLD
ASSOCIATION_THRESHOLD = 0.3   # sdmetrics DEFAULT_REAL_ASSOCIATION_THRESHOLD
MAX_DECIMALS = 14             # sdmetrics KSComplement rounds to sys.float_info.dig - 1
CONTINUOUS = ("numerical", "datetime")
HIST_BINS = 30
TOP_CATEGORIES = 15


# ---------------------------------------------------------------- column encodings


def _datetime_ns(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 nanoseconds since epoch, missing mask); tz-aware values compared in UTC."""
    dt = series if pd.api.types.is_datetime64_any_dtype(series) else pd.to_datetime(
        series, errors="coerce")
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
    values = dt.to_numpy().astype("datetime64[ns]")
    return values.view("int64"), np.isnat(values)


def _continuous_values(series: pd.Series, kind: str) -> np.ndarray:
    """Float array with NaN for missing; datetimes as nanoseconds since epoch."""
    if kind == "datetime":
        ns, missing = _datetime_ns(series)
        out = ns.astype("float64")
        out[missing] = np.nan
        return out
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _ks_values(series: pd.Series, kind: str, values: np.ndarray) -> np.ndarray:
    """Non-missing values exactly as KSComplement sees them (int64 ns for datetimes, floats
    rounded to 14 decimals)."""
    if kind == "datetime":
        ns, missing = _datetime_ns(series)
        return ns[~missing]
    return np.round(values[~np.isnan(values)], MAX_DECIMALS)


def _category_codes(real: pd.Series, synthetic: pd.Series) -> tuple[np.ndarray, np.ndarray, list]:
    """Shared integer codes for both frames; missing values get code -1."""
    codes, uniques = pd.factorize(pd.concat([real, synthetic], ignore_index=True), sort=False)
    return codes[: len(real)], codes[len(real):], list(uniques)


# ---------------------------------------------------------------- column shapes


def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 - max |ECDF_real - ECDF_synth|, the statistic of scipy.stats.ks_2samp.

    The maximum is reached at a sample value, so both ECDFs are evaluated at the sorted values
    of each sample (sorted queries keep searchsorted cache-friendly).
    """
    if len(real) == 0 or len(synthetic) == 0:
        return float("nan")
    a, b = np.sort(real), np.sort(synthetic)
    d = 0.0
    for grid in (a, b):
        cdf_a = np.searchsorted(a, grid, side="right") / len(a)
        cdf_b = np.searchsorted(b, grid, side="right") / len(b)
        d = max(d, float(np.max(np.abs(cdf_a - cdf_b))))
    return 1.0 - d


def tv_complement(real_codes: np.ndarray, synth_codes: np.ndarray, n_categories: int) -> float:
    """1 - 0.5 * sum |p_synth - p_real| over categories (missing dropped).

    sdmetrics adds 1e-6 to the real count of categories only seen in synthetic data; kept for
    exact equality.
    """
    r = real_codes[real_codes >= 0]
    s = synth_codes[synth_codes >= 0]
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    rc = np.bincount(r, minlength=n_categories).astype("float64")
    sc = np.bincount(s, minlength=n_categories).astype("float64")
    rc[(rc == 0) & (sc > 0)] += 1e-6
    keep = (rc > 0) | (sc > 0)
    return float(1.0 - 0.5 * np.abs(sc[keep] / sc.sum() - rc[keep] / rc.sum()).sum())


# ---------------------------------------------------------------- pair trends


def pairwise_pearson(x: np.ndarray) -> np.ndarray:
    """Pearson r for every column pair on the rows where both are present (matrix ops).

    Columns are standardised first so that nanosecond datetimes keep their precision.
    """
    mask = ~np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns -> NaN, handled
        mean = np.nanmean(x, axis=0) if len(x) else np.zeros(x.shape[1])
        std = np.nanstd(x, axis=0) if len(x) else np.ones(x.shape[1])
        std = np.where((std > 0) & np.isfinite(std), std, 1.0)
        z = np.where(mask, (x - np.nan_to_num(mean)) / std, 0.0)
        m = mask.astype("float64")
        n = m.T @ m
        sx = z.T @ m            # sx[i, j] = sum of z_i over rows where i and j present
        sxx = (z * z).T @ m
        sxy = z.T @ z
        cov = n * sxy - sx * sx.T
        var_i = n * sxx - sx * sx
        r = cov / np.sqrt(var_i * var_i.T)
    r[n < 2] = np.nan
    return np.clip(r, -1.0, 1.0)


def _digitize(values: np.ndarray) -> np.ndarray:
    """sdmetrics' discretisation of a continuous column in a mixed pair (own edges per frame)."""
    edges = np.histogram_bin_edges(values[~np.isnan(values)])
    return np.digitize(values, bins=edges)  # 0..11, NaN -> 11


def cramers_v(table: np.ndarray) -> float:
    """Cramér's V of a count table, rows/columns without counts removed (as pandas unstack)."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    n = table.sum()
    if n == 0 or min(table.shape) < 2:
        return float("nan")
    rows = table.sum(axis=1, keepdims=True)
    cols = table.sum(axis=0, keepdims=True)
    expected = rows * cols / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return math.sqrt(chi2 / n / (min(table.shape) - 1))


def contingency(real_a, real_b, synth_a, synth_b, ka: int, kb: int) -> tuple[float, float]:
    """(1 - TVD of joint frequencies, Cramér's V of the real table) from integer codes."""
    real_counts = np.bincount(real_a * kb + real_b, minlength=ka * kb)
    synth_counts = np.bincount(synth_a * kb + synth_b, minlength=ka * kb)
    association = cramers_v(real_counts.reshape(ka, kb))
    if len(real_a) == 0 or len(synth_a) == 0:
        return float("nan"), association
    diff = np.abs(real_counts / len(real_a) - synth_counts / len(synth_a)).sum()
    return float(1.0 - diff / 2.0), association


# ---------------------------------------------------------------- orchestration


class _Encoded:
    """Per-column arrays shared by the shape and pair computations."""

    def __init__(self, real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str]):
        self.kinds = kinds
        self.cont_real: dict[str, np.ndarray] = {}
        self.cont_synth: dict[str, np.ndarray] = {}
        self.ks_real: dict[str, np.ndarray] = {}
        self.ks_synth: dict[str, np.ndarray] = {}
        self.codes: dict[str, tuple[np.ndarray, np.ndarray, list]] = {}
        for col, kind in kinds.items():
            if kind in CONTINUOUS:
                self.cont_real[col] = _continuous_values(real[col], kind)
                self.cont_synth[col] = _continuous_values(synthetic[col], kind)
                self.ks_real[col] = _ks_values(real[col], kind, self.cont_real[col])
                self.ks_synth[col] = _ks_values(synthetic[col], kind, self.cont_synth[col])
            else:
                self.codes[col] = _category_codes(real[col], synthetic[col])

    def pair_codes(self, col: str) -> tuple[np.ndarray, np.ndarray, int]:
        """Codes with NaN as its own category (groupby dropna=False) or digitised bins."""
        if col in self.codes:
            r, s, uniques = self.codes[col]
            k = len(uniques)
            return np.where(r < 0, k, r), np.where(s < 0, k, s), k + 1
        return _digitize(self.cont_real[col]), _digitize(self.cont_synth[col]), 12

    def is_constant(self, col: str) -> bool:
        """sdmetrics CorrelationSimilarity refuses columns with exactly one distinct value."""
        for values in (self.cont_real[col], self.cont_synth[col]):
            present = values[~np.isnan(values)]
            if len(present) and np.all(present == present[0]):
                return True
        return False


def _shareable_range(lo: float, hi: float, datetime: bool) -> tuple[float, float]:
    """The plot's range rounded outward, so its first and last edges are not seed values (the report is shareable):
    numbers to 2 significant digits, dates (nanoseconds) to whole years."""
    if datetime:
        year = np.datetime64(int(lo), "ns").astype("datetime64[Y]")
        end = np.datetime64(int(hi), "ns").astype("datetime64[Y]") + np.timedelta64(1, "Y")
        return float(year.astype("datetime64[ns]").astype("int64")), float(end.astype("datetime64[ns]").astype("int64"))
    return outward(lo, up=False), outward(hi, up=True)


def _shape_plot(enc: _Encoded, col: str, kind: str) -> dict:
    """Histogram / bar data for the per-column plot (proportions of non-missing rows)."""
    if kind in CONTINUOUS:
        r, s = enc.cont_real[col], enc.cont_synth[col]
        both = np.concatenate([r[~np.isnan(r)], s[~np.isnan(s)]])
        if len(both) == 0:
            return {"type": "empty"}
        lo, hi = np.quantile(both, [0.005, 0.995]) if len(both) > 200 else (both.min(), both.max())
        if hi <= lo:
            lo, hi = both.min(), both.max() + (1.0 if both.max() == both.min() else 0.0)
        lo, hi = _shareable_range(lo, hi, kind == "datetime")
        edges = np.linspace(lo, hi, HIST_BINS + 1)
        rh = np.histogram(np.clip(r[~np.isnan(r)], lo, hi), edges)[0]
        sh = np.histogram(np.clip(s[~np.isnan(s)], lo, hi), edges)[0]
        return {
            "type": "hist", "datetime": kind == "datetime", "edges": edges.tolist(),
            "real": (rh / max(rh.sum(), 1)).tolist(), "synthetic": (sh / max(sh.sum(), 1)).tolist(),
            "real_missing": float(np.isnan(r).mean()) if len(r) else 0.0,
            "synthetic_missing": float(np.isnan(s).mean()) if len(s) else 0.0,
        }
    r, s, uniques = enc.codes[col]
    k = len(uniques)
    rc = np.bincount(np.where(r < 0, k, r), minlength=k + 1) / max(len(r), 1)
    sc = np.bincount(np.where(s < 0, k, s), minlength=k + 1) / max(len(s), 1)
    order = [i for i in np.argsort(-rc[:k] - 1e-9 * sc[:k], kind="stable")[:TOP_CATEGORIES]]
    # the report is shareable: a category is named only where the shareable suite would name it (a column of few
    # values, each seen SHARE_MIN_COUNT times in the real rows); otherwise the bars are ranks (#1 the most frequent)
    named = k <= SHARE_MAX_CATEGORIES and all(rc[i] * len(r) >= SHARE_MIN_COUNT for i in range(k))
    labels = [str(uniques[i]) if named else f"#{rank + 1}" for rank, i in enumerate(order)]
    real_p, synth_p = [float(rc[i]) for i in order], [float(sc[i]) for i in order]
    rest = [i for i in range(k) if i not in set(order)]
    if rest:
        labels.append(f"(other {len(rest)})")
        real_p.append(float(rc[rest].sum()))
        synth_p.append(float(sc[rest].sum()))
    if rc[k] > 0 or sc[k] > 0:
        labels.append("(missing)")
        real_p.append(float(rc[k]))
        synth_p.append(float(sc[k]))
    return {"type": "bar", "labels": labels, "real": real_p, "synthetic": synth_p}


def column_shape_scores(enc: _Encoded) -> dict[str, dict]:
    out = {}
    for col, kind in enc.kinds.items():
        if kind in CONTINUOUS:
            # KS on the exact values sdmetrics sees (int ns for datetimes, rounded floats)
            score = ks_complement(enc.ks_real[col], enc.ks_synth[col])
            metric = "KSComplement"
        else:
            r, s, uniques = enc.codes[col]
            score = tv_complement(r, s, len(uniques))
            metric = "TVComplement"
        out[col] = {"kind": kind, "metric": metric, "score": _num(score),
                    "plot": _shape_plot(enc, col, kind)}
    return out


def pair_trend_scores(enc: _Encoded) -> list[dict]:
    """Every pair (in column order) with its score, real relation and whether it contributes."""
    cont_cols = [c for c, k in enc.kinds.items() if k in CONTINUOUS]
    corr_real = corr_synth = None
    if len(cont_cols) >= 2:
        corr_real = pairwise_pearson(np.column_stack([enc.cont_real[c] for c in cont_cols]))
        corr_synth = pairwise_pearson(np.column_stack([enc.cont_synth[c] for c in cont_cols]))
    pos = {c: i for i, c in enumerate(cont_cols)}
    pair_codes = {c: enc.pair_codes(c) for c in enc.kinds}
    constant = {c: enc.is_constant(c) for c in cont_cols}
    pairs = []
    for a, b in itertools.combinations(list(enc.kinds), 2):
        if a in pos and b in pos:
            pairs.append(_correlation_pair(a, b, corr_real[pos[a], pos[b]],
                                           corr_synth[pos[a], pos[b]], constant[a] or constant[b]))
        else:
            (ra, sa, ka), (rb, sb, kb) = pair_codes[a], pair_codes[b]
            score, assoc = contingency(ra, rb, sa, sb, ka, kb)
            contributes = bool(not math.isnan(assoc) and assoc > ASSOCIATION_THRESHOLD)
            pairs.append({"a": a, "b": b, "metric": "ContingencySimilarity",
                          "score_all": _num(score), "score": _num(score) if contributes else None,
                          "real_association": _num(assoc), "contributes": contributes})
    return pairs


def _correlation_pair(a: str, b: str, r_real: float, r_synth: float, constant: bool) -> dict:
    score_all = 1.0 - abs(r_real - r_synth) / 2.0
    contributes = bool(not constant and not math.isnan(r_real)
                       and abs(r_real) > CORRELATION_THRESHOLD)
    score = score_all if contributes else None
    return {"a": a, "b": b, "metric": "CorrelationSimilarity", "score_all": _num(score_all),
            "score": _num(score), "real_correlation": _num(r_real),
            "synthetic_correlation": _num(r_synth), "contributes": contributes}


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def encode(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str]) -> _Encoded:
    return _Encoded(real, synthetic, kinds)


def fidelity_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str],
                     computed_on: dict | None = None) -> tuple[Metric, Metric, Metric]:
    """(column_shapes, pair_trends, overall) Metrics, with per-column and per-pair detail."""
    computed_on = dict(computed_on or {"real_rows": len(real), "synthetic_rows": len(synthetic),
                                       "sampled": False, "cap": None})
    enc = encode(real, synthetic, kinds)
    columns = column_shape_scores(enc)
    pairs = pair_trend_scores(enc)
    shapes = _mean(c["score"] for c in columns.values())
    trends = _mean(p["score"] for p in pairs if p["contributes"])
    overall = _mean([shapes, trends])
    cont_cols = [c for c, k in kinds.items() if k in CONTINUOUS]
    shapes_m = Metric(
        name="column_shapes", value=shapes, lower=0.0, upper=1.0, higher_is_better=True,
        definition="mean over columns of KSComplement = 1 - max|F_real - F_synth| (numerical, "
                   "datetime) or TVComplement = 1 - 0.5*sum|p_real - p_synth| (categorical, "
                   "boolean); missing values dropped",
        computed_on=computed_on, detail={"columns": columns})
    trends_m = Metric(
        name="pair_trends", value=trends, lower=0.0, upper=1.0, higher_is_better=True,
        definition="mean over related column pairs of CorrelationSimilarity = 1 - |r_real - "
                   "r_synth|/2 (Pearson, both continuous; pair counts if |r_real| > 0.5) or "
                   "ContingencySimilarity = 1 - 0.5*sum|P_real(a,b) - P_synth(a,b)| (otherwise; "
                   "continuous side cut into 10 bins; pair counts if Cramér's V(real) > 0.3)",
        computed_on=computed_on,
        detail={"pairs": pairs, "contributing_pairs": sum(p["contributes"] for p in pairs),
                "correlation": _correlation_detail(pairs, cont_cols)})
    overall_m = Metric(
        name="overall", value=overall, lower=0.0, upper=1.0, higher_is_better=True,
        definition="mean(column_shapes, pair_trends), a missing property ignored",
        computed_on=computed_on)
    return shapes_m, trends_m, overall_m


def _correlation_detail(pairs: list[dict], cont_cols: list[str]) -> dict:
    """Real and synthetic Pearson matrices of the continuous columns (for the heatmap)."""
    idx = {c: i for i, c in enumerate(cont_cols)}
    n = len(cont_cols)
    real = [[1.0 if i == j else None for j in range(n)] for i in range(n)]
    synth = [[1.0 if i == j else None for j in range(n)] for i in range(n)]
    for p in pairs:
        if p["metric"] == "CorrelationSimilarity":
            i, j = idx[p["a"]], idx[p["b"]]
            real[i][j] = real[j][i] = p["real_correlation"]
            synth[i][j] = synth[j][i] = p["synthetic_correlation"]
    return {"columns": cont_cols, "real": real, "synthetic": synth}


def fidelity_vs_holdout(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None,
                        kinds: dict[str, str], *, max_rows: int, seed: int) -> Metric | None:
    """`overall` graded against the real holdout instead of the training rows, beside its reference: the real
    training rows graded against the same holdout (what real data scores on rows it is not). The synthetic and the
    training rows are seeded samples of the same size (at most max_rows), so the two figures carry the same sampling
    noise; a synthetic table that scores well against its training rows but below the reference here has learned
    those rows rather than their distribution (raking, for one, pulls output toward the training rows). None without
    a holdout of 10 rows."""
    from .detection import seeded_cap

    if holdout is None or len(holdout) < 10 or not kinds:
        return None
    n = max(1, min(len(train), len(synthetic), max_rows))
    t, s = seeded_cap(train, n, seed), seeded_cap(synthetic, n, seed + 1)
    h = seeded_cap(holdout, max(1, max_rows), seed + 2)
    syn_shapes, syn_trends, syn = fidelity_metrics(h, s, kinds)
    ref_shapes, ref_trends, ref = fidelity_metrics(h, t, kinds)
    return Metric(name="quality_vs_holdout", value=syn.value, lower=0.0, upper=1.0, higher_is_better=True,
                  definition="overall fidelity (mean of column shapes and pair trends) of the synthetic rows against "
                             "the real holdout rows; real_reference: the real training rows against the same holdout",
                  computed_on={"holdout_rows": len(h), "synthetic_rows": len(s), "train_rows": len(t),
                               "synthetic_rows_available": len(synthetic), "seed": seed, "cap": max_rows},
                  detail={"real_reference": ref.value,
                          "column_shapes": syn_shapes.value, "pair_trends": syn_trends.value,
                          "reference_column_shapes": ref_shapes.value, "reference_pair_trends": ref_trends.value})
