"""The seed profile: one closed-vocabulary kind per column, with the reason it was chosen.

It is its own versioned artifact (written as profile.json next to every output), built by a classmethod that returns
a new object, so nothing downstream edits it in place.
"""

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from synthforge.errors import UserError

Kind = Literal["numerical", "categorical", "datetime", "boolean", "id", "text"]
MODELLED = ("numerical", "categorical", "datetime", "boolean")
PROFILE_VERSION = 1
_MAX_CATEGORIES_KEPT = 50


class ColumnProfile(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    kind: Kind
    dtype: str
    null_fraction: float
    distinct: int
    reason: str
    dropped: str | None = None  # why the tabular family leaves it out, if it does
    minimum: float | str | None = None
    maximum: float | str | None = None
    categories: tuple[str, ...] | None = None  # only when few enough to list


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: int = PROFILE_VERSION
    rows: int
    columns: tuple[ColumnProfile, ...]
    target: str | None = None
    primary_key: str | None = None

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, overrides: dict[str, str] | None = None, target: str | None = None,
                   drop: tuple[str, ...] = (), primary_key: str | None = None) -> "Profile":
        overrides = dict(overrides or {})
        for field, names in (("seed.columns", list(overrides)), ("seed.drop", list(drop)),
                             ("seed.target", [target] if target else []),
                             ("seed.primary_key", [primary_key] if primary_key else [])):
            missing = [n for n in names if n not in df.columns]
            if missing:
                raise UserError(f"{field}: column {missing[0]!r} is not in the seed data; columns are "
                                f"{_list(df.columns)}")
        if target is not None and target in drop:
            raise UserError(f"seed.drop: {target!r} is the target column and cannot be dropped")
        cols = []
        for name in df.columns:
            col = _profile_column(str(name), df[name], overrides.get(name))
            if name in drop:
                col = col.model_copy(update={"dropped": "listed in seed.drop"})
            elif name == primary_key:
                col = col.model_copy(update={"kind": "id", "dropped": None, "reason": "seed.primary_key"})
            elif name == target and col.dropped:
                raise UserError(f"seed.target: column {name!r} cannot be modelled ({col.dropped})")
            cols.append(col)
        return cls(rows=len(df), columns=tuple(cols), target=target, primary_key=primary_key)

    def kinds(self, modelled_only: bool = True) -> dict[str, Kind]:
        return {c.name: c.kind for c in self.columns if not (modelled_only and c.dropped)}

    def metric_kinds(self) -> dict[str, str]:
        """The columns the quality metrics compare (ids and free text are not distributions to match)."""
        return {c.name: c.kind for c in self.columns if not c.dropped and c.kind in MODELLED}

    def notes(self) -> list[str]:
        return [f"column {c.name!r} left out: {c.dropped}" for c in self.columns if c.dropped]

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """The modelled columns, with datetime columns parsed, in profile order."""
        keep = [c for c in self.columns if not c.dropped]
        out = df[[c.name for c in keep]].copy()
        for c in keep:
            if c.kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(out[c.name]):
                out[c.name] = pd.to_datetime(out[c.name], errors="coerce", format="mixed")
        return out


def _profile_column(name: str, s: pd.Series, override: str | None) -> ColumnProfile:
    nn = s.dropna()
    base = dict(name=name, dtype=str(s.dtype), null_fraction=float(s.isna().mean()) if len(s) else 1.0,
                distinct=int(nn.nunique()))
    if len(nn) == 0:
        return ColumnProfile(**base, kind=override or "categorical", reason="no values",
                             dropped="every value is missing")
    kind, reason = (override, "seed.columns override") if override else _detect(nn)
    extra = _stats(nn, kind)
    dropped = None
    if kind in ("id", "text"):
        dropped = f"{reason}; the tabular family does not model {kind} columns"
    elif base["distinct"] == 1:
        reason += "; constant"
    return ColumnProfile(**base, kind=kind, reason=reason, dropped=dropped, **extra)


def _detect(nn: pd.Series) -> tuple[str, str]:
    n, distinct = len(nn), nn.nunique()
    ratio = distinct / n
    if pd.api.types.is_bool_dtype(nn):
        return "boolean", "boolean dtype"
    if pd.api.types.is_datetime64_any_dtype(nn):
        return "datetime", "datetime dtype"
    if pd.api.types.is_numeric_dtype(nn):
        values = nn.to_numpy(dtype=float)
        integral = bool(np.all(np.mod(values, 1) == 0))
        if integral and n >= 20 and distinct == n and _is_sequence(values):
            return "id", "integer sequence, every value distinct (id-like)"
        return "numerical", "numeric dtype"
    text = nn.astype(str)
    if _parses_as_dates(text):
        return "datetime", "text that parses as dates"
    lengths = text.str.len()
    words = text.str.count(r"\s+") + 1
    if words.mean() >= 6 and ratio > 0.5:
        return "text", f"free text (mean {words.mean():.0f} words)"
    if n >= 20 and ratio > 0.95:
        if lengths.mean() > 40:
            return "text", "free text (long, almost all distinct)"
        return "id", f"{ratio:.0%} of values distinct (id-like)"
    return "categorical", f"{distinct} distinct values"


def _is_sequence(values: np.ndarray) -> bool:
    # integers that are all distinct and cover their range densely look like row numbers or keys
    span = values.max() - values.min() + 1
    return span <= 2 * len(values)


def _parses_as_dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if not sample.str.contains(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", regex=True).mean() > 0.95:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.95)


def _stats(nn: pd.Series, kind: str) -> dict:
    if kind == "numerical" and pd.api.types.is_numeric_dtype(nn):
        return {"minimum": float(nn.min()), "maximum": float(nn.max())}
    if kind == "datetime":
        parsed = nn if pd.api.types.is_datetime64_any_dtype(nn) else pd.to_datetime(nn, errors="coerce", format="mixed")
        return {"minimum": str(parsed.min()), "maximum": str(parsed.max())}
    if kind in ("categorical", "boolean") and nn.nunique() <= _MAX_CATEGORIES_KEPT:
        return {"categories": tuple(sorted(map(str, nn.unique())))}
    return {}


def _list(names) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:15]) + (f", ... ({len(names)} in all)" if len(names) > 15 else "")


def to_sdv_metadata(profile: Profile, frame: pd.DataFrame, table: str = "seed"):
    """SDV 2.x Metadata for the modelled columns: detected by SDV, then corrected with our kinds."""
    from sdv.metadata import Metadata  # imported here: sdv is slow to import and only the tabular family needs it

    metadata = Metadata.detect_from_dataframes({table: frame})
    sdtypes = {"numerical": "numerical", "categorical": "categorical", "boolean": "boolean", "datetime": "datetime",
               "id": "id"}
    current_pk = metadata.tables[table].primary_key
    if current_pk and current_pk != profile.primary_key:
        metadata.remove_primary_key(table_name=table)
    for col in profile.columns:
        if col.dropped or col.name not in frame.columns:
            continue
        metadata.update_column(col.name, table_name=table, sdtype=sdtypes[col.kind])
    if profile.primary_key:
        metadata.set_primary_key(profile.primary_key, table_name=table)
    return metadata
