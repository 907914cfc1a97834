"""The grid a number column's seed values sit on: how many decimals, which step (all multiples of 5, of 0.25, ...),
and which values are point masses (a zero for most rows, a cap, a sentinel). The profile records it, the report
shows it, and generated numbers are put back on it (tabular_codec.py, sdv_tabular.py)."""

from __future__ import annotations

import math

import numpy as np

_STEPS = (1000, 500, 250, 100, 60, 50, 30, 25, 20, 15, 12, 10, 6, 5, 4, 3, 2, 1)
MAX_DECIMALS = 6
POINT_MASS_SHARE = 0.05  # shown in the profile; the autoregressive codec keeps smaller ones too


def decimals(values: np.ndarray) -> int | None:
    """The fewest decimals that write every value exactly (None: more than MAX_DECIMALS, i.e. continuous)."""
    v = values[np.isfinite(values)]
    for d in range(MAX_DECIMALS + 1):
        scaled = v * 10**d
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1, np.abs(scaled))):
            return d
    return None


def step(values: np.ndarray) -> float | None:
    """The largest round step every value is a multiple of (5 for 0, 5, 35, 120; 0.25 for 1.25, 3.5), or None."""
    v = values[np.isfinite(values)]
    d = decimals(v)
    if d is None or len(v) == 0:
        return None
    ints = np.round(v * 10**d).astype(np.int64)
    for k in _STEPS:
        if np.all(ints % k == 0):
            return k / 10**d
    return 1 / 10**d


def point_masses(values: np.ndarray, share: float = POINT_MASS_SHARE) -> dict[float, float]:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return {}
    uniq, counts = np.unique(v, return_counts=True)
    heavy = counts / len(v) >= share
    return {float(u): round(float(c / len(v)), 4) for u, c in zip(uniq[heavy], counts[heavy])}


def snap(values: np.ndarray, grid_step: float | None, lo: float, hi: float) -> np.ndarray:
    """Values rounded to the grid and clipped to the seed's range (missing stays missing)."""
    out = np.clip(values, lo, hi)
    if grid_step:
        out = np.round(out / grid_step) * grid_step
        out = np.round(out, max(0, -int(math.floor(math.log10(grid_step)))) + 1)  # 0.1 * 3 → 0.3, not 0.30000004
    return out


def describe(values: np.ndarray) -> str | None:
    """One line for the report: 'integers, multiples of 5; point masses 0 (83%)'."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return None
    d, k = decimals(v), step(v)
    parts = ["continuous" if d is None else "integers" if d == 0 else f"{d} decimals"]
    if k is not None and k != 10 ** -(d or 0):
        parts.append(f"multiples of {k:g}")
    masses = point_masses(v)
    text = ", ".join(parts)
    if masses:
        text += "; point masses " + ", ".join(f"{m:g} ({s:.0%})" for m, s in masses.items())
    return text
