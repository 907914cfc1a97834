"""Ids and personal data are not distributions to match: sdmetrics leaves them out of column shapes and pair
trends, and so do we. They are graded for what matters instead: do the synthetic values have the seed's format, are
ids unique, and does any real value appear in the output (a leak)."""

from __future__ import annotations

import pandas as pd

from synthforge.data.pii import PII_TYPES, looks_like
from synthforge.families.identifiers import canonical, shape


def _canon(s: pd.Series) -> pd.Series:
    """Ids read from CSV may be 42 in one frame and 42.0 in another; compare their text without a trailing .0."""
    return s.dropna().astype(str).str.strip().str.replace(r"\.0$", "", regex=True)


def grade_identifier(name: str, kind: str, real: pd.Series, synthetic: pd.Series) -> dict:
    """One row of the report's identifier table. kind: "id" or a PII type."""
    r, s = _canon(real), _canon(synthetic)
    # a leak is the same value in another layout too: (555) 010-2030 is 5550102030, "Anna" is "anna"
    seen = set(r.map(lambda v: canonical(kind, v)))
    copied = s.map(lambda v: canonical(kind, v)).isin(seen)
    if kind in PII_TYPES:
        well_formed = float(looks_like(kind, s).mean()) if len(s) else None
        form = f"looks like a {kind.replace('_', ' ')}"
    else:
        shapes = set(r.map(shape))
        well_formed = float(s.map(shape).isin(shapes).mean()) if len(s) else None
        form = "has a shape the seed's ids have (digits, letters, separators)"
    return {"column": name, "treated_as": kind, "format": form, "well_formed": well_formed,
            "unique": float(s.nunique() / len(s)) if len(s) else None,
            "leaked": float(copied.mean()) if len(s) else None,
            "leaked_values": int(s[copied].nunique()),
            "null_share": {"real": float(real.isna().mean()), "synthetic": float(synthetic.isna().mean())}}


def grade_identifiers(real: pd.DataFrame, synthetic: pd.DataFrame, treated: dict[str, str]) -> list[dict]:
    """treated: column -> "id" or PII type, for the columns present in both frames."""
    return [grade_identifier(c, k, real[c], synthetic[c]) for c, k in treated.items()
            if c in real.columns and c in synthetic.columns]
