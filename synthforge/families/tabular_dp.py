"""Differential privacy for the autoregressive table model: a DP codec and DP-SGD through Opacus (Apache-2.0).

What ε covers (basic composition, ε_total = ε_codec + ε_sgd, δ_total = δ_codec + δ_sgd):
1. The codec's statistics, with `codec_share` (default 50 %) of ε and half of δ, split evenly over the modelled
   columns (add/remove-one-row neighbours, so one row moves one count per column):
   - a number (or date) column: one Laplace histogram over a fixed public grid (missing, exactly zero, and
     quarter-octave buckets ±[2^(k/4), 2^((k+1)/4))); the buckets whose noisy count clears a threshold that an
     empty bucket clears with probability 5 % (over the whole grid) are the quantile cells, and the missing and
     zero buckets the missing token and a zero point mass (the threshold-and-release of a histogram, as in DP
     bounds estimation: SmartNoise's approx_bounds, Gillenwater et al. 2021). Everything after the noise is
     post-processing, so no cell edge, minimum or maximum is a seed value; a decoded value is uniform within its
     cell (whole numbers for integer columns, the dtype being schema, not data; a float column spends a tenth of
     its ε on a Laplace count of its non-whole values, and is drawn as whole numbers when that is below n/2).
   - a category column: a stability-based histogram (Korolova et al. 2009; Bun, Nissim & Stemmer 2016): Laplace
     counts of the seen categories, kept when above 1 + ln(1/(2δ_c))/ε_c, so a category held by one row (or a few)
     never appears. Rows of a dropped category train as the column's most frequent kept category.
   No order between columns (`find_orders`), parent choice by mutual information, raw frequency (`marginals_`),
   raking or `smoothing` reads the rows under DP.
2. The network's weights, DP-SGD with the rest of ε and δ/2: per-example clipping, Gaussian noise calibrated by
   Opacus' RDP accountant for the planned epochs, Poisson-sampled batches; no early stopping (a validation loss
   on private rows would spend privacy that is not counted).

Randomness: every noise draw here comes from the operating system (os.urandom), never from the recipe's
random_seed. Opacus' own `secure_mode` needs `torchcsprng`, which has no build for torch 2.x, so its CSPRNG is not
available: the Gaussian noise and Poisson sampling use a torch generator reseeded with 64 fresh bits of
os.urandom before every step, and Opacus' secure noise path (the sum of four Gaussians against floating-point
attacks, Holohan & Braghin 2021) is switched on. A DP fit is therefore not reproducible row for row; sampling a
fitted model with a seed still is.

δ defaults to 1/n² (n the number of training rows, treated as public): a mechanism that publishes each row with
probability δ is (0, δ)-DP, so δ must be far below 1/n; at 1/n² such a leak exposes a row with probability 1/n in
all. A recipe may set a smaller δ; one above 1/n is refused.
"""

from __future__ import annotations

import math
import os
import secrets

import numpy as np
import pandas as pd

from synthforge.errors import UserError
from synthforge.families.tabular_codec import ColumnCodec, TableCodec, as_float

DEFAULT_EPOCHS = 30
DEFAULT_MAX_GRAD_NORM = 1.0
DEFAULT_CODEC_SHARE = 0.5
_LOG2_RANGE = range(-20, 64)  # |v| in [2^k, 2^(k+1)): the public grid a column's range is read from
_WHOLE_SHARE = 0.1  # of a float column's ε: are its values whole numbers?
_PER_OCTAVE = 4  # buckets per power of two (the grid has 2 × 84 × 4 of them, a multiple of 16): a cell is at most 19 % wide relative to its values
_MISS_RATE = 0.05  # chance that any empty bucket of a column's histogram passes the threshold


def default_delta(n: int) -> float:
    return 1.0 / max(n, 2) ** 2


def budget(dp: dict, n: int) -> dict:
    """ε and δ for the codec and for DP-SGD; δ above 1/n is refused (the field named)."""
    delta = float(dp.get("delta", default_delta(n)))
    if delta > 1.0 / n:
        raise UserError(f"generator.params.dp.delta: {delta:g} is above 1/n = {1 / n:.3g} for {n} training rows; "
                        f"leave it out (default 1/n² = {default_delta(n):.3g}) or set a smaller one")
    share = float(dp.get("codec_share", DEFAULT_CODEC_SHARE))
    eps = float(dp["epsilon"])
    return {"epsilon": eps, "delta": delta, "epsilon_codec": eps * share, "delta_codec": delta / 2,
            "epsilon_sgd": eps * (1 - share), "delta_sgd": delta / 2}


# -- secure noise ---------------------------------------------------------------------------------------------
def _uniform(size: int) -> np.ndarray:
    """Uniform (0, 1) from os.urandom: 53 random bits per draw, never 0."""
    bits = np.frombuffer(os.urandom(8 * size), dtype=np.uint64) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) * 2.0**-53


def laplace(scale: float, size: int) -> np.ndarray:
    """Laplace(0, scale) by inverting the CDF of a secure uniform."""
    u = _uniform(size) - 0.5
    return -scale * np.sign(u) * np.log1p(-2 * np.abs(u))


# -- the DP codec ---------------------------------------------------------------------------------------------
def fit_codec(df: pd.DataFrame, kinds: dict[str, str], epsilon: float, delta: float, *, max_bins: int,
              rows_per_bin: int, point_mass: float, dtypes: dict[str, str]) -> tuple[TableCodec, dict]:
    """A TableCodec from (epsilon, delta)-DP statistics of `df` (step 1 of the module docstring), and what it
    spent per column."""
    kinds = {c: {"boolean": "categorical"}.get(kinds[c], kinds[c]) for c in df.columns}
    eps_c = epsilon / len(df.columns)
    n_cat = sum(k == "categorical" for k in kinds.values())
    delta_c = delta / max(n_cat, 1)
    codecs, spent = [], {}
    for name in df.columns:
        if kinds[name] == "categorical":
            codecs.append(_categories(name, df[name], eps_c, delta_c))
            spent[name] = {"epsilon": eps_c, "delta": delta_c, "statistic": "thresholded category counts"}
        else:
            x = as_float(df[name], kinds[name])
            codecs.append(_numbers(name, kinds[name], dtypes[name], x, eps_c, max_bins=max_bins,
                                   rows_per_bin=rows_per_bin, point_mass=point_mass))
            spent[name] = {"epsilon": eps_c, "delta": 0.0,
                           "statistic": "cells, missing and zero: a thresholded Laplace histogram on a public log "
                                        "grid (a float column: 10 % of it on a count of non-whole values)"}
    return TableCodec(list(df.columns), codecs), spent


def _categories(name: str, s: pd.Series, eps: float, delta: float) -> ColumnCodec:
    """Stability-based histogram: a category is released only if its Laplace(1/ε) count clears
    1 + ln(1/(2δ))/ε, so one with a single row is out with probability ≥ 1 - δ."""
    null = "__null__"
    counts = s.astype(object).where(s.notna(), null).value_counts(sort=False)
    noisy = counts.to_numpy(dtype=float) + laplace(1 / eps, len(counts))
    threshold = 1 + math.log(1 / (2 * delta)) / eps
    keep = np.argsort(-noisy, kind="stable")
    keep = keep[noisy[keep] >= threshold]
    values = [None if counts.index[i] == null else _py(counts.index[i]) for i in keep]
    return ColumnCodec(name, "categorical", "values", str(s.dtype), values=values or [None])


def _numbers(name: str, kind: str, dtype: str, x: np.ndarray, eps: float, *, max_bins: int, rows_per_bin: int,
             point_mass: float) -> ColumnCodec:
    """A float column spends a tenth of `eps` on whether its values are whole numbers, the rest on the histogram."""
    float_dtype = not (dtype.startswith(("int", "uint", "Int", "UInt")) or kind == "datetime")
    whole_eps = eps * _WHOLE_SHARE if float_dtype else 0.0
    return _number_cells(name, kind, dtype, x, eps - whole_eps, whole_eps, max_bins=max_bins,
                         rows_per_bin=rows_per_bin, point_mass=point_mass)


def _number_cells(name: str, kind: str, dtype: str, x: np.ndarray, eps: float, whole_eps: float, *, max_bins: int,
                  rows_per_bin: int, point_mass: float) -> ColumnCodec:
    """One Laplace(1/ε) histogram over a public grid: missing, exactly zero, and ±[2^(k/4), 2^((k+1)/4)) for
    k/4 in [-20, 64). Buckets whose noisy count clears the threshold (an empty one does so with probability
    _MISS_RATE over the whole grid) are the cells, merged up to about `rows_per_bin` noisy rows; a value outside
    them encodes to the nearest cell. The missing and zero buckets become the missing token and a zero point mass.
    """
    n = len(x)
    q = _PER_OCTAVE
    ks = np.arange(_LOG2_RANGE.start * q, _LOG2_RANGE.stop * q)
    finite = x[~np.isnan(x)]
    nz = finite[finite != 0]
    k = np.clip(np.floor(np.log2(np.abs(nz)) * q), ks[0], ks[-1]).astype(int) - ks[0]
    # the real line, left to right: negative buckets (largest |v| first), then positive ones
    neg = np.bincount(k[nz < 0], minlength=len(ks))[::-1]
    pos = np.bincount(k[nz > 0], minlength=len(ks))
    counts = np.concatenate([[np.isnan(x).sum(), (finite == 0).sum()], neg, pos]).astype(float)
    noisy = counts + laplace(1 / eps, len(counts))
    threshold = (1 / eps) * math.log(len(counts) / (2 * _MISS_RATE))
    has_null = bool(noisy[0] >= threshold)
    masses = [0.0] if noisy[1] >= max(threshold, point_mass * n) else []
    bounds = np.concatenate([-(2.0 ** ((ks[::-1] + 1) / q)), 2.0 ** (ks / q)])  # lower end of each bucket
    uppers = np.concatenate([-(2.0 ** (ks[::-1] / q)), 2.0 ** ((ks + 1) / q)])
    # no bucket clears the threshold (few rows, small ε): sums of 4, then 16 neighbouring noisy counts (one and
    # four octaves) against a threshold √4, √16 times higher: post-processing, so no further ε is spent
    for level in (1, 4, 16):
        line = noisy[2:].reshape(-1, level).sum(axis=1)
        kept = np.flatnonzero(line >= threshold * math.sqrt(level))
        if len(kept) or (level == 16 and not masses):  # else the fullest 4-octave block, by noisy count
            kept = kept if len(kept) else np.array([int(np.argmax(line))])
            bounds, uppers = bounds.reshape(-1, level)[:, 0], uppers.reshape(-1, level)[:, -1]
            break
    if len(kept) == 0:  # no block clears the threshold: the column is its point mass (and missing)
        values = masses + ([None] if has_null else [])
        return ColumnCodec(name, kind, "values", dtype, values=values)
    whole = dtype.startswith(("int", "uint", "Int", "UInt")) or kind == "datetime"
    if not whole and whole_eps:  # a float column (missing values make it one) whose values are whole numbers:
        # a Laplace count of its non-whole values (sensitivity 1) below n/2 says so
        whole = bool((finite != np.round(finite)).sum() + laplace(1 / whole_eps, 1)[0] < n / 2)
    # cells: runs of kept buckets merged until they hold about rows_per_bin noisy rows (max_bins at most)
    edges, lows, acc = [], [], 0.0
    for b in kept:
        if not lows or bounds[b] != edges[-1] or acc >= rows_per_bin:
            lows.append(bounds[b])
            edges.append(uppers[b])
            acc = line[b]
        else:
            edges[-1], acc = uppers[b], acc + line[b]
    low = lows[0]
    if whole:  # integer cells centred on whole numbers: (v - .5, v + .5] decodes to v
        edges = np.unique(np.floor(np.asarray(edges)) + 0.5).tolist()
        low = math.floor(low) - 0.5 if math.floor(low) - 0.5 < edges[0] else edges[0] - 1
    edges = edges[-max_bins:]
    return ColumnCodec(name, kind, "bins", dtype, values=masses, has_null=has_null, edges=[float(e) for e in edges],
                       low=float(low), bin_values=[], step=1.0 if whole else None,
                       fine=int(np.ceil(np.sqrt(len(edges)))))


def conform(df: pd.DataFrame, codec: TableCodec) -> pd.DataFrame:
    """The rows with every category the DP codec dropped read as the column's first (most frequent) kept one, and
    a number column released as a point mass alone (no cell cleared the threshold) reads as that mass (missing
    stays missing if the codec kept it), so each row encodes to a token of the codec."""
    out = df.copy()
    for c in codec.codecs:
        if c.kind != "categorical" and c.mode == "values":
            x = as_float(out[c.name], c.kind)
            number = next((v for v in c.values if v is not None), None)
            fill = np.where(np.isnan(x) & (None in c.values), np.nan, np.nan if number is None else number)
            out[c.name] = fill if c.kind == "numerical" else pd.to_datetime(fill)
        elif c.kind == "categorical":
            s = out[c.name].astype(object).where(out[c.name].notna(), None)
            known = s.map(lambda v: v in c.values or (v is None and None in c.values))
            out[c.name] = s.where(known, c.values[0])
    return out


def released(codec: TableCodec) -> dict[str, dict]:
    """What the DP codec released about each modelled column, as plain values: a number or date column's support
    (the ends of its cells and its point masses: points of the public grid, never seed values), a category
    column's kept categories, and whether a missing token was kept. All of it is post-processing of the codec's
    noisy statistics, so it is covered by ε_codec: the one source a DP run's shareable suite and profile read."""
    out = {}
    for c in codec.codecs:
        nullable = c.has_null or None in c.values
        if c.kind == "categorical":
            out[c.name] = {"kind": c.kind, "categories": [v for v in c.values if v is not None],
                           "missing": nullable}
            continue
        ends = [v for v in c.values if v is not None]
        if c.mode == "bins" and c.edges:
            ends += [c.low, c.edges[-1]]
        lo, hi = (min(ends), max(ends)) if ends else (None, None)
        if c.kind == "datetime" and ends:  # the codec holds dates as int64 nanoseconds
            lo, hi = (_iso(v) for v in (lo, hi))
        out[c.name] = {"kind": c.kind, "minimum": lo, "maximum": hi, "missing": nullable,
                       "whole_numbers": c.step == 1.0}
    return out


def released_profile(profile, released_stats: dict[str, dict]) -> dict:
    """profile.json for a DP run's shareable folder: the schema (names, kinds, dtypes, which columns are generated or
    left out, the target), taken as public, and per modelled column only what the DP codec released. The profile's
    other fields are read from the rows and are left out: null shares, distinct counts, reasons and warnings (they
    quote counts and values), grids, exact minima, maxima and category lists (those are in the private folder)."""
    columns = []
    for c in profile.columns:
        col = {"name": c.name, "kind": c.kind, "dtype": c.dtype, "modelled": c.name in released_stats,
               "generated": c.generated, "left_out": bool(c.dropped)}
        col.update({k: v for k, v in released_stats.get(c.name, {}).items() if k != "kind"})
        columns.append(col)
    return {"version": profile.version, "rows": profile.rows, "target": profile.target,
            "primary_key": profile.primary_key, "columns": columns,
            "shareable": "differential privacy: the schema (taken as public) and the DP codec's released statistics "
                         "only; the exact profile is in the run's private folder"}


def _iso(ns: float) -> str | None:
    try:
        return pd.Timestamp(int(ns)).isoformat()
    except (OverflowError, ValueError):  # a grid point past the years pandas can hold: no bound
        return None


def strip_profile(profile):
    """The profile with no statistic of the rows (minima, maxima, category lists, grids): what a DP generator
    saves."""
    cols = [c.model_copy(update={"minimum": None, "maximum": None, "categories": None, "grid": None,
                                 "warning": None}) for c in profile.columns]
    return profile.model_copy(update={"columns": tuple(cols)})


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


# -- DP-SGD ---------------------------------------------------------------------------------------------------
class Privacy:
    def __init__(self, engine, b: dict, epochs: int, codec_spent: dict):
        self.engine, self.b, self.epochs, self.codec_spent = engine, b, epochs, codec_spent

    def spent(self) -> dict:
        sgd = float(self.engine.get_epsilon(self.b["delta_sgd"]))
        return {"epsilon": self.b["epsilon_codec"] + sgd, "delta": self.b["delta"],
                "target_epsilon": self.b["epsilon"], "composition": "basic: ε_codec + ε_sgd, δ_codec + δ_sgd",
                "codec": {"epsilon": self.b["epsilon_codec"], "delta": self.b["delta_codec"],
                          "covers": "every modelled column's codec statistics (tabular_dp.py step 1)",
                          "columns": self.codec_spent},
                "sgd": {"epsilon": sgd, "delta": self.b["delta_sgd"], "epochs": self.epochs,
                        "accountant": "rdp (Opacus)", "covers": "network weights (DP-SGD, Poisson sampling)"},
                "noise": "os.urandom (not the recipe's random_seed); the fit is not reproducible",
                "not_covered": "the schema (column names, kinds, dtypes, the target) and n, the row count, taken "
                               "as public; the report, graded on the raw rows, and the exact profile, both in "
                               "the private folder only; generated columns (ids, personal data), whose format "
                               "(lengths, leading digits, date range) is read from the seed",
                "shareable_folder": "the synthetic rows, the expectation suite and profile built from the DP "
                                    "codec's released statistics, the validation of the synthetic rows against "
                                    "that suite, the recipe and this manifest: nothing else computed from the "
                                    "rows"}


class _Fresh:
    """Batches from Opacus' Poisson-sampling loader, the shared torch generator reseeded from os.urandom before
    each, so the sampling of a step and the noise of its update come from fresh OS entropy."""

    def __init__(self, loader, generator):
        self.loader, self.generator = loader, generator

    def __call__(self):
        it = iter(self.loader)
        while True:
            self.generator.manual_seed(secrets.randbits(64))
            try:
                yield next(it)[0]
            except StopIteration:
                return


def make_private(net, opt, x_train, batch: int, dp: dict, codec_spent: dict):
    """The network, optimizer and a batch iterator wrapped by Opacus for (ε_sgd, δ_sgd)-DP over `dp_epochs(dp)`
    epochs."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    try:
        from opacus import PrivacyEngine
    except ImportError:
        raise UserError("generator.params.dp: needs Opacus; install it with pip install 'synthforge[dp]'") from None
    b = budget(dp, len(x_train))
    epochs = dp_epochs(dp)
    loader = DataLoader(TensorDataset(x_train), batch_size=batch)
    # Opacus warns here that its secure RNG is off (it needs torchcsprng); the warning is left to show, and the
    # secure noise path is switched on below with a generator reseeded from os.urandom at every step
    engine = PrivacyEngine(accountant="rdp", secure_mode=False)
    generator = torch.Generator().manual_seed(secrets.randbits(64))
    engine.secure_mode, engine.secure_rng = True, generator
    net, opt, loader = engine.make_private_with_epsilon(
        module=net, optimizer=opt, data_loader=loader, target_epsilon=b["epsilon_sgd"], target_delta=b["delta_sgd"],
        epochs=epochs, max_grad_norm=float(dp.get("max_grad_norm", DEFAULT_MAX_GRAD_NORM)))
    return net, opt, _Fresh(loader, generator), Privacy(engine, b, epochs, codec_spent)


def dp_epochs(dp: dict) -> int:
    return int(dp.get("epochs", DEFAULT_EPOCHS))
