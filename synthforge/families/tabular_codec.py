"""Columns as tokens and back, for the autoregressive table model (step 1 of tabular_ar.py).

- categorical and boolean: one token per value (missing is a value); a very long tail shares one `rare` token that
  decodes to one of the tail's seed values, drawn by frequency.
- numerical and datetime with at most `max_levels` distinct values, each seen in `rows_per_bin` rows on average:
  one token per value (levels).
- otherwise: every value holding at least `point_mass` of the rows (zeros, caps, sentinels) is a token of its own,
  the rest fall into quantile cells of about `rows_per_bin` rows, written as two tokens (coarse bin, cell within
  it). How a cell decodes (`cell_values`):
  * `seed`: one of the seed's own values in it, so the output stays on the seed's grid (integers, multiples of 5,
    two decimals) and point masses keep their share. In a column where most values are distinct each such value
    points at one training row: a customer's spend to the cent comes back verbatim (quality/value_leak.py).
  * `auto` (the default): `seed` for the columns value_leak.py does not gate (ages, counts: their values repeat in
    any honest sample), and for the high-cardinality ones (>= 20 distinct values, >= half of the values other than
    the most common one distinct) a value drawn uniformly within pieces of ten seed rows of the cell (the seed's
    distribution function through every tenth value, linear in between), rounded to the seed's step. A value held
    by one training row then comes back about as often as a fresh row of that density lands on it, while the cell
    keeps its shape at the scale of ten rows. A column that such a column is encoded above (see orders below) is
    drawn the same way, since in the rows where the two are equal it writes the other's value.
  * `uniform`, and any private codec (differential privacy): no seed value of a bin is kept; uniform between the
    bin's edges, rounded to the seed's step.
  Point masses are their own tokens and decode to themselves. Datetimes are integer nanoseconds, on a step of a
  whole day, hour, minute or second where every seed value is.
- order between columns: when a number (or date) is never below an earlier one in the seed (price ≥ loan amount,
  end ≥ start) and a random pairing would break that, the column is encoded as its distance from that base column
  and decoded as base + distance, so no output row breaks the order and "equal" keeps its share (SDV's Inequality
  constraint does the same with a log-difference; here the difference stays on the seed's grid).

The codec is plain data: saved as JSON, it runs no code when loaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthforge.data import grid

MAX_CATEGORY_TOKENS = 500
# quality/value_leak.py's MIN_DISTINCT and MIN_DISTINCT_RATIO: the columns the value-leak gate reads are the ones
# `cell_values: auto` keeps off the seed's values. Copied, not imported, because families sit below quality
# (docs/architecture.md); tests/test_tabular_cell_values.py fails if the two drift apart.
HIGH_CARDINALITY_DISTINCT = 20
HIGH_CARDINALITY_RATIO = 0.5
CELL_VALUES = ("auto", "seed", "uniform")
# `auto`'s pieces (see _between). Any density read from the seed puts more mass where the seed's own values happened
# to fall close together than a fresh sample would, and the more so the fewer rows a piece spans (the share of seed
# values goes as k/(k-1)): decoding a seed's own tokens, a uniform integer column with as many rows as values came
# back with value-leak excess +.27 at 1 row per piece (linear between neighbouring values), +.10 at 5, +.05 at 10
# and at a whole cell of ~25 (tests/test_tabular_cell_values.py). On ames (seeds 0/1, docs/benchmarks.md) a whole
# cell raised detection (gradient boosting) by .014 over seed values; 10 keeps the cell's shape at a finer scale.
ROWS_PER_PIECE = 10
_DATETIME_STEPS_NS = (86_400e9, 3_600e9, 60e9, 1e9)
_NULL = "__null__"
_MIN_BROKEN_BY_CHANCE = 0.01  # an order is worth keeping if a random pairing of the two columns breaks it this often
# ... and worth encoding as a distance when "equal" is a value of its own (price = loan amount in 5 % of rows): the
# distance then has a point mass at 0 the model can learn. A loose order (age ≥ years in the job) encoded that way
# loses the column's own shape (measured: detection of credit_data rose), so it is left to the model.
_MIN_EQUAL = 0.01


@dataclass
class ColumnCodec:
    name: str
    kind: str  # categorical | numerical | datetime
    mode: str  # values | bins
    dtype: str
    values: list = field(default_factory=list)  # values: each token's value (None = missing); bins: point masses
    rare: list = field(default_factory=list)  # values behind the shared rare token, and their counts
    rare_counts: list = field(default_factory=list)
    edges: list = field(default_factory=list)  # bins: upper edges of the cells
    low: float = 0.0  # bins: the lower edge of the first cell
    bin_values: list = field(default_factory=list)  # bins: the seed's values in each cell (empty when private)
    fine: int = 1  # bins: cells per coarse bin (the second token says which)
    step: float | None = None  # bins: the seed's grid (grid.py), for draws that are not seed values
    # bins: seed (one of bin_values) | between (uniform within pieces of ROWS_PER_PIECE bin_values); no bin_values:
    # uniform between the cell's edges.
    # A codec saved before this field existed loads as seed, as it sampled then.
    draw: str = "seed"
    has_null: bool = False
    base: str | None = None  # encoded as its distance above (sign 1) or below (sign -1) this earlier column
    sign: int = 1

    @property
    def cardinalities(self) -> list[int]:
        """One token for levels and categories; two for binned numbers: the coarse bin (or point mass, or
        missing), then the cell within it, so the model, not a blind draw, places a value inside its bin."""
        if self.mode == "values":
            return [len(self.values) + (1 if self.rare else 0)]
        coarse = -(-len(self.edges) // self.fine)
        return [len(self.values) + coarse + (1 if self.has_null else 0), self.fine]


def high_cardinality(x: np.ndarray) -> bool:
    """value_leak.py's test for a gated column, on a column's non-missing values: at least 20 distinct, and at least
    half of the values that are not the most common one distinct."""
    finite = x[~np.isnan(x)]
    if len(finite) == 0:
        return False
    counts = np.unique(finite, return_counts=True)[1]
    rest = len(finite) - int(counts.max())
    return len(counts) >= HIGH_CARDINALITY_DISTINCT and rest > 0 and (len(counts) - 1) / rest >= HIGH_CARDINALITY_RATIO


def _step(kind: str, rest: np.ndarray) -> float | None:
    if kind == "datetime":  # grid.step stops at 1,000 ns: a date column would come back at random times of day
        return next((s for s in _DATETIME_STEPS_NS if np.all(np.mod(rest, s) == 0)), grid.step(rest))
    return grid.step(rest)


def _fit_numbers(name: str, kind: str, dtype: str, x: np.ndarray, *, max_bins: int, rows_per_bin: int,
                 max_levels: int, point_mass: float, private: bool = False, rare_below: int = 0,
                 cell_values: str = "seed", high: bool = False, **base) -> ColumnCodec:
    finite = x[~np.isnan(x)]
    uniq, counts = np.unique(finite, return_counts=True)
    has_null = bool(np.isnan(x).any())
    masses = uniq[counts >= max(point_mass * len(x), 5)] if point_mass > 0 else uniq[:0]
    rest = np.sort(finite[~np.isin(finite, masses)])
    # few values, each seen often enough to learn (as often as a bin holds), or every value a point mass: levels
    if (len(uniq) <= max_levels and len(finite) >= rows_per_bin * len(uniq)) or len(rest) == 0:
        values = [_py(v) for v in uniq[np.argsort(-counts, kind="stable")]] + ([None] if has_null else [])
        return ColumnCodec(name, kind, "values", dtype, values=values, **base)
    n_cells = int(min(max_bins, max(1, len(rest) // rows_per_bin)))
    edges = np.unique(np.quantile(rest, np.linspace(0, 1, n_cells + 1)[1:], method="inverted_cdf"))
    which = np.searchsorted(edges, rest, side="left")
    cells = [rest[which == b].tolist() for b in range(len(edges))]
    keep = [b for b, vals in enumerate(cells) if vals]
    private = private or cell_values == "uniform"
    return ColumnCodec(name, kind, "bins", dtype, values=[_py(v) for v in masses], has_null=has_null,
                       edges=[float(edges[b]) for b in keep], low=float(rest[0]),
                       bin_values=[] if private else [cells[b] for b in keep], step=_step(kind, rest),
                       fine=int(np.ceil(np.sqrt(len(keep)))),
                       draw="between" if cell_values == "auto" and high and not private else "seed", **base)


def _fit_categories(name: str, s: pd.Series, rare_below: int = 0) -> ColumnCodec:
    counts = s.astype(object).where(s.notna(), _NULL).value_counts(sort=True)
    values = [None if v == _NULL else _py(v) for v in counts.index]
    keep = min(MAX_CATEGORY_TOKENS - 1, int((counts.to_numpy() >= rare_below).sum()))
    rare, rare_counts = [], []
    if keep < len(values) - 1:  # two or more rare values share one token (one alone would be no protection)
        rare, rare_counts = values[keep:], counts.to_numpy()[keep:].tolist()
        values = values[:keep]
    return ColumnCodec(name, "categorical", "values", str(s.dtype), values=values, rare=rare,
                       rare_counts=rare_counts)


def as_float(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        d = pd.to_datetime(s)
        out = d.astype("int64").to_numpy(dtype=float)
        out[d.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def find_orders(numbers: dict[str, np.ndarray], kinds: dict[str, str]) -> dict[str, tuple[str, int]]:
    """For each number column, the earlier column it never falls below (sign 1) or rises above (sign -1) in the
    seed, where a random pairing would break that order in at least 1 % of rows; the tightest such base wins.
    Bases have no missing values (a distance needs both ends); a column serves as base only if it has none."""
    names = list(numbers)
    rng = np.random.default_rng(0)
    found: dict[str, tuple[str, int]] = {}
    for j, col in enumerate(names):
        x = numbers[col]
        ok_x = ~np.isnan(x)
        if ok_x.sum() < 20:
            continue
        best = None
        for base in names[:j]:
            b = numbers[base]
            if kinds[base] != kinds[col] or np.isnan(b).any():
                continue
            d = x[ok_x] - b[ok_x]
            if np.mean(d == 0) < _MIN_EQUAL:
                continue
            for sign in (1, -1):
                if np.all(sign * d >= 0):
                    shuffled = x[ok_x] - rng.permutation(b[ok_x])
                    if np.mean(sign * shuffled < 0) < _MIN_BROKEN_BY_CHANCE:
                        continue
                    spread = float(np.std(d)) / (float(np.std(x[ok_x])) or 1.0)
                    if best is None or spread < best[0]:
                        best = (spread, base, sign)
        if best is not None:
            found[col] = (best[1], best[2])
    return found


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _key(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


def _encode_values(c: ColumnCodec, raw) -> list[np.ndarray]:
    lookup = {_key(v): i for i, v in enumerate(c.values)}
    rare = len(c.values)
    return [np.array([lookup.get(_key(v), rare) for v in raw], dtype=np.int64)]


def _encode_bins(c: ColumnCodec, x: np.ndarray) -> list[np.ndarray]:
    coarse, fine = np.zeros(len(x), dtype=np.int64), np.zeros(len(x), dtype=np.int64)
    masses = np.asarray(c.values, dtype=float)  # sorted by value, so searchsorted gives a mass's token
    is_null = np.isnan(x)
    is_mass = np.isin(x, masses)
    coarse[is_mass] = np.searchsorted(masses, x[is_mass])
    rest = ~is_mass & ~is_null
    cell = np.minimum(np.searchsorted(np.asarray(c.edges), x[rest], side="left"), len(c.edges) - 1)
    coarse[rest], fine[rest] = len(masses) + cell // c.fine, cell % c.fine
    coarse[is_null] = c.cardinalities[0] - 1
    return [coarse, fine]


def _decode_values(c: ColumnCodec, tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    values = np.empty(len(tokens), dtype=object)
    known = tokens < len(c.values)
    values[known] = np.array(c.values + [None], dtype=object)[tokens[known]]
    if c.rare and (~known).any():
        p = np.asarray(c.rare_counts, dtype=float)
        values[~known] = np.array(c.rare, dtype=object)[rng.choice(len(c.rare), (~known).sum(), p=p / p.sum())]
    return values


def _decode_bins(c: ColumnCodec, coarse: np.ndarray, fine: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.full(len(coarse), np.nan)
    masses = np.asarray(c.values, dtype=float)
    is_mass = coarse < len(masses)
    out[is_mass] = masses[coarse[is_mass]]
    n_cells = len(c.edges)
    binned = (coarse >= len(masses)) & (coarse < len(masses) + -(-n_cells // c.fine))
    # the last coarse bin may hold fewer than `fine` cells: a fine token past its end means its last cell
    cell = np.full(len(coarse), -1)
    cell[binned] = np.minimum((coarse[binned] - len(masses)) * c.fine + fine[binned], n_cells - 1)
    for b in range(n_cells):
        hit = cell == b
        if not hit.any():
            continue
        lo, hi = (c.edges[b - 1] if b else c.low), c.edges[b]
        if c.bin_values and c.draw == "between":
            out[hit] = grid.snap(_between(c.bin_values[b], lo if b else None, hit.sum(), rng), c.step, lo, hi)
        elif c.bin_values:
            vals = np.asarray(c.bin_values[b])
            out[hit] = vals[rng.integers(0, len(vals), hit.sum())]
        else:
            out[hit] = grid.snap(rng.uniform(lo, hi, hit.sum()), c.step, lo, hi)
    return out


def _between(values: list, below: float | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from a cell's seed values smoothed at the scale of ROWS_PER_PIECE rows: the empirical distribution
    function through every ROWS_PER_PIECE-th sorted value (starting from the previous cell's last value `below`, so
    the gap between two cells is covered too; the first cell has none), linear in between, i.e. uniform within
    pieces that each hold ROWS_PER_PIECE seed rows. Only a value that more than ROWS_PER_PIECE rows hold fills a
    piece of width 0 and is drawn as itself; a cell of one value with nothing below it gives that value."""
    knots = np.sort(np.asarray(values, dtype=float))
    if below is not None:
        knots = np.concatenate([[below], knots])
    if len(knots) == 1:
        return np.full(n, knots[0])
    last = len(knots) - 1
    sel = np.unique(np.r_[np.arange(0, last + 1, ROWS_PER_PIECE), last])
    return np.interp(rng.uniform(0, last, n), sel, knots[sel])


def _restore(c: ColumnCodec, values: np.ndarray) -> pd.Series:
    if c.kind == "datetime":
        floats = np.array([np.nan if v is None else v for v in values], dtype=float)
        out = pd.Series(pd.to_datetime(np.where(np.isnan(floats), 0, floats).astype("int64"), unit="ns"))
        out[np.isnan(floats)] = pd.NaT
        return out.astype(c.dtype) if c.dtype.startswith("datetime64") else out
    s = pd.Series(values)
    if c.kind == "categorical":  # missing as NaN, as pandas reads it from CSV or Parquet ("None" is a value to some)
        s = s.where(s.notna(), np.nan)
    if c.kind == "numerical":
        s = pd.to_numeric(s.astype(object).where(s.notna(), np.nan), errors="coerce")
    try:
        if c.dtype.startswith(("int", "uint")) and s.isna().any():
            return s.astype("Int64")
        return s.astype(c.dtype)
    except (TypeError, ValueError):
        return s


@dataclass
class TableCodec:
    columns: list[str]
    codecs: list[ColumnCodec]

    @classmethod
    def fit(cls, df: pd.DataFrame, kinds: dict[str, str], **options) -> "TableCodec":
        kinds = {c: {"boolean": "categorical"}.get(kinds[c], kinds[c]) for c in df.columns}
        numbers = {c: as_float(df[c], k) for c, k in kinds.items() if k in ("numerical", "datetime")}
        orders = find_orders(numbers, kinds)
        # judged on the columns as written, not on a distance from a base column: that is what leaks. A base column
        # counts as high-cardinality when the column above it does: in the rows where the two are equal (a house of
        # one floor: living area = first floor) the base's value is the other's, so a base writing seed values
        # would hand them on (ames: Gr_Liv_Area's excess .06-.08 through First_Flr_SF)
        high = {c: high_cardinality(x) for c, x in numbers.items()}
        for col, (base_col, _) in orders.items():
            high[base_col] = high[base_col] or high[col]
        codecs = []
        for name in df.columns:
            if kinds[name] == "categorical":
                codecs.append(_fit_categories(name, df[name], options.get("rare_below", 0)))
                continue
            x, base = numbers[name], {"high": high[name]}
            if name in orders:
                base_col, sign = orders[name]
                x, base = sign * (x - numbers[base_col]), {**base, "base": base_col, "sign": sign}
            codecs.append(_fit_numbers(name, kinds[name], str(df[name].dtype), x, **options, **base))
        return cls(list(df.columns), codecs)

    @property
    def cardinalities(self) -> list[int]:
        """The vocabulary of every token column, in order (a binned number has two)."""
        return [v for c in self.codecs for v in c.cardinalities]

    @property
    def first_token(self) -> dict[str, int]:
        """Each column's first token column."""
        starts = np.cumsum([0] + [len(c.cardinalities) for c in self.codecs])
        return {c.name: int(s) for c, s in zip(self.codecs, starts)}

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        for c in self.codecs:
            s = df[c.name].reset_index(drop=True)
            if c.kind == "categorical":
                parts += _encode_values(c, s.astype(object).where(s.notna(), None))
                continue
            x = as_float(s, c.kind)
            if c.base:
                x = c.sign * (x - as_float(df[c.base].reset_index(drop=True), c.kind))
            parts += _encode_bins(c, x) if c.mode == "bins" else _encode_values(c, [None if np.isnan(v) else v
                                                                                    for v in x])
        return np.stack(parts, axis=1)

    def encode_leading(self, df: pd.DataFrame) -> dict[int, np.ndarray]:
        """Token columns of the leading columns given in `df` (token index -> tokens): a child's parent context."""
        k = sum(len(c.cardinalities) for c in self.codecs[:df.shape[1]])
        head = TableCodec(self.columns[:df.shape[1]], self.codecs[:df.shape[1]])
        tokens = head.encode(df)
        cards = head.cardinalities
        # a value the child table never saw beside it (a parent category without children in the seed) reads as
        # the column's most frequent one, the first token
        return {j: np.where(tokens[:, j] < cards[j], tokens[:, j], 0) for j in range(k)}

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        first, numbers, out = self.first_token, {}, {}
        for c in self.codecs:
            t = first[c.name]
            if c.mode == "bins":
                values = _decode_bins(c, tokens[:, t], tokens[:, t + 1], rng)
            else:
                values = _decode_values(c, tokens[:, t], rng)
            if c.kind != "categorical":
                values = np.array([np.nan if v is None else v for v in values], dtype=float)
                if c.base:
                    values = numbers[c.base] + c.sign * values
                numbers[c.name] = values
            out[c.name] = _restore(c, values)
        return pd.DataFrame(out)

    def token_of(self, column: str, value: Any) -> int:
        c = self.codecs[self.columns.index(column)]
        if c.mode == "values" and c.base is None:
            for i, v in enumerate(c.values):
                if v == value or str(v) == str(value):
                    return i
        raise KeyError(f"{value!r} is not a value of {column}")

    def describe(self) -> dict[str, str]:
        """What the codec decided per column, for the report."""
        out = {}
        for c in self.codecs:
            if c.mode == "values":
                text = f"{len(c.values)} values" + (f" + {len(c.rare)} rare" if c.rare else "")
            else:
                text = (f"{len(c.edges)} quantile cells, {len(c.values)} point masses"
                        + (", missing" if c.has_null else "")
                        + (f"; values between every {ROWS_PER_PIECE}th seed value" + (f", on a step of {c.step:g}"
                                                                             if c.step else "")
                           if c.bin_values and c.draw == "between" else
                           "; values drawn from the seed's own" if c.bin_values else
                           "; values uniform within a cell" + (f", on a step of {c.step:g}" if c.step else "")))
            if c.base:
                text += f"; kept {'≥' if c.sign > 0 else '≤'} {c.base} (encoded as the distance)"
            out[c.name] = text
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"columns": self.columns, "codecs": [asdict(c) for c in self.codecs]}))

    @classmethod
    def load(cls, path: Path) -> "TableCodec":
        d = json.loads(Path(path).read_text())
        return cls(d["columns"], [ColumnCodec(**c) for c in d["codecs"]])
