"""Value leak: per modelled column, the share of synthetic values that are exact seed (training) values of that
column, beside the real holdout's own share. Exact-copy checks look at whole rows; a column can leak on its own
(a phone number modelled as a number, an income to the cent) while no row is a copy.

In a column where most values are distinct, an exact value points at one training row; a generator that writes
such values more often than fresh real rows happen to repeat them (the holdout's share) is copying them. In a
column of a few levels (a plan, a yes/no) every value is shared by many rows, and both shares are near 1 by nature.

The gate metric (`value_leak_excess`) is the largest excess, synthetic share minus holdout share, over the
high-cardinality columns: at least `MIN_DISTINCT` distinct training values, and at least `MIN_DISTINCT_RATIO` of the
training values that are not the column's most common value distinct. Why those: at half the values distinct, a
typical value identifies one or two rows (where re-identification starts); leaving the most common value out of
the ratio keeps a zero-inflated column in (a spend with 54 % zeros is high-cardinality through its non-zero half,
where each amount points at a customer); below 20 distinct values a column is a set of levels, whose reuse is not
a leak. The excess, not
the raw share, is gated, because a column of integers in a narrow range (ages) repeats training values in any
honest sample; the holdout measures that baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .report_model import Metric

MIN_DISTINCT = 20
MIN_DISTINCT_RATIO = 0.5


def _values(s: pd.Series) -> np.ndarray:
    nn = s.dropna()
    if pd.api.types.is_bool_dtype(nn):
        return nn.astype(str).to_numpy()
    if pd.api.types.is_numeric_dtype(nn):
        return nn.to_numpy(dtype=float)
    if pd.api.types.is_datetime64_any_dtype(nn):
        return nn.astype("int64").to_numpy()
    return nn.astype(str).to_numpy()


def _share_in(values: np.ndarray, seen: np.ndarray) -> float | None:
    return float(np.isin(values, seen).mean()) if len(values) else None


def column_leak(train: pd.Series, synthetic: pd.Series, holdout: pd.Series | None) -> dict:
    """One column's row: synthetic and holdout shares of values found among the training values, and whether the
    column is high-cardinality (gated)."""
    values = _values(train)
    seen, counts = np.unique(values, return_counts=True)
    distinct = len(seen)
    rest = len(values) - (int(counts.max()) if distinct else 0)  # the rows that do not hold the most common value
    ratio = (distinct - 1) / rest if rest > 0 else 0.0
    high = distinct >= MIN_DISTINCT and ratio >= MIN_DISTINCT_RATIO
    synth = _share_in(_values(synthetic), seen)
    held = _share_in(_values(holdout), seen) if holdout is not None else None
    excess = synth - held if synth is not None and held is not None else None
    return {"column": str(train.name), "train_distinct": distinct,
            "distinct_ratio": ratio, "high_cardinality": bool(high),
            "synthetic_share": synth, "holdout_share": held, "excess": excess}


def value_leak_metric(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None,
                      columns: list[str]) -> Metric:
    """Per column in `columns` (the modelled ones), the share of synthetic values that are training values, beside
    the holdout's; the value is the largest excess over high-cardinality columns (0 where no column is one)."""
    rows = [column_leak(train[c], synthetic[c], holdout[c] if holdout is not None else None)
            for c in columns if c in train.columns and c in synthetic.columns]
    gated = [r for r in rows if r["high_cardinality"] and r["excess"] is not None]
    value = max((r["excess"] for r in gated), default=0.0) if holdout is not None else None
    worst = max(gated, key=lambda r: r["excess"])["column"] if gated else None
    return Metric(name="value_leak_excess", value=value, lower=-1.0, upper=1.0, higher_is_better=False,
                  definition="largest, over high-cardinality modelled columns (>= "
                             f"{MIN_DISTINCT} distinct training values, >= {MIN_DISTINCT_RATIO:.0%} of the values "
                             "other than the most common one distinct), of the share of synthetic values that are "
                             "exact training values of that column minus the real holdout's own share; 0 when no "
                             "column is high-cardinality",
                  computed_on={"columns": len(rows), "gated_columns": [r["column"] for r in gated],
                               "min_distinct": MIN_DISTINCT, "min_distinct_ratio": MIN_DISTINCT_RATIO},
                  detail={"columns": rows, "worst": worst})
