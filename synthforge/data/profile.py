"""The seed profile: one closed-vocabulary kind per column, with the reason it was chosen.

It is its own versioned artifact (written as profile.json next to every output), built by a classmethod that returns
a new object, so nothing downstream edits it in place.
"""

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from synthforge.data import grid
from synthforge.data.pii import PII_TYPES, classify, header_is_id
from synthforge.errors import UserError

Kind = Literal["numerical", "categorical", "datetime", "boolean", "id", "pii", "text"]
MODELLED = ("numerical", "categorical", "datetime", "boolean")
PROFILE_VERSION = 2
_MAX_CATEGORIES_KEPT = 50
_MAX_DISCRETE_LEVELS = 15


class ColumnProfile(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    kind: Kind
    dtype: str
    null_fraction: float
    distinct: int
    reason: str
    dropped: str | None = None  # why the tabular family leaves it out, if it does
    generated: str | None = None  # "id" or a PII type: made fresh for every row instead of modelled
    warning: str | None = None  # what was changed or assumed to model it (values read as missing, ...)
    grid: str | None = None  # numbers: the grid the seed's values sit on (grid.py)
    minimum: float | str | None = None
    maximum: float | str | None = None
    categories: tuple[str, ...] | None = None  # only when few enough to list


    def generated_as(self) -> str | None:
        """How a generated column is made, in words (the profile's notes and the report's Columns table)."""
        if self.generated is None:
            return None
        return _GENERATED_AS.get(self.generated, f"fake {self.generated.replace('_', ' ')}s (Faker) in the seed's "
                                                 "case, never a seed's value")


_GENERATED_AS = {  # families/identifiers.py makes them so
    "id": "new ids in the seed's format, numbered from a random offset (not after the seed's largest)",
    "phone": "valid phone numbers of the seed's region in its layout and dtype, never a seed's value",
    "card_number": "Luhn-valid card numbers of the seed's lengths and first digits, never a seed's value",
    "iban": "IBANs of the seed's country and layout with valid check digits, never a seed's value",
    "postcode": "codes in a seed shape (digit count, leading zeros, text), never a seed's value",
    "national_id": "codes in a seed shape, never a seed's value",
    "account_number": "codes in a seed shape (digit count, leading zeros), never a seed's value",
    "birth_date": "dates drawn between the seed's month-rounded quantiles in its format, never a seed's value",
    "email": "fake emails at example.* domains, unique, never a seed's value",
}


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
        _check_names(df)
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
                col = col.model_copy(update={"kind": "id", "dropped": None, "reason": "seed.primary_key",
                                             "generated": "id", "grid": None})
            elif name == target and (col.dropped or col.generated):
                why = col.dropped or f"{col.reason}: generated fresh for every row, not learned"
                raise UserError(f"seed.target: column {name!r} cannot be modelled ({why})")
            cols.append(col)
        if primary_key is not None:
            _check_primary_key(primary_key, df[primary_key])
        return cls(rows=len(df), columns=tuple(cols), target=target, primary_key=primary_key)

    def kinds(self, modelled_only: bool = True) -> dict[str, Kind]:
        """Kind per column: the modelled ones (neither dropped nor generated), or all."""
        return {c.name: c.kind for c in self.columns if not (modelled_only and (c.dropped or c.generated))}

    def metric_kinds(self) -> dict[str, str]:
        """The columns the quality metrics compare (ids, personal data and free text are not distributions to
        match; ids and personal data are graded on format and leaks instead)."""
        return {c.name: c.kind for c in self.columns if not c.dropped and not c.generated and c.kind in MODELLED}

    def generated_columns(self) -> dict[str, str]:
        """Column -> "id" or its PII type, for the columns made fresh instead of modelled."""
        return {c.name: c.generated for c in self.columns if c.generated and not c.dropped}

    def output_columns(self) -> list[str]:
        """The columns a synthetic table has: the modelled and the generated ones, in the seed's order."""
        return [c.name for c in self.columns if not c.dropped]

    def notes(self) -> list[str]:
        return ([f"column {c.name!r} left out: {c.dropped}" for c in self.columns if c.dropped]
                + [f"column {c.name!r} generated, not learned ({c.reason}): {c.generated_as()}"
                   for c in self.columns if c.generated and not c.dropped]
                + [f"column {c.name!r}: {c.warning}" for c in self.columns if c.warning and not c.dropped])

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """The modelled columns in profile order, each converted to its kind: datetimes parsed (time zones to UTC),
        numbers stored as text parsed, infinities and values that are not numbers read as missing, true/false
        text read as booleans."""
        keep = [c for c in self.columns if not c.dropped and not c.generated]
        out = df[[c.name for c in keep]].copy()
        for c in keep:
            if c.kind == "datetime":
                out[c.name] = _as_datetime(out[c.name])
            elif c.kind == "numerical":
                out[c.name] = _as_number(out[c.name])
            elif c.kind == "boolean" and not pd.api.types.is_bool_dtype(out[c.name]):
                out[c.name] = _as_boolean(out[c.name])
        return out


def _profile_column(name: str, s: pd.Series, override: str | None) -> ColumnProfile:
    s = s.reset_index(drop=True)  # labels are row positions, for messages
    nn = s.dropna()
    if len(nn) and nn.map(lambda v: isinstance(v, (list, dict, set, tuple, np.ndarray))).any():
        if override in MODELLED:
            raise UserError(f"seed.columns.{name}: {override!r}, but the column holds nested lists or objects; "
                            "flatten it into plain columns first")
        return ColumnProfile(name=name, dtype=str(s.dtype), null_fraction=float(s.isna().mean()),
                             distinct=int(nn.astype(str).nunique()), kind="text",
                             reason="nested values (lists or objects)",
                             dropped="holds nested lists or objects; flatten it into plain columns to model it")
    base = dict(name=name, dtype=str(s.dtype), null_fraction=float(s.isna().mean()) if len(s) else 1.0,
                distinct=int(nn.nunique()))
    if len(nn) == 0:
        return ColumnProfile(**base, kind=override or "categorical", reason="no values",
                             dropped="every value is missing")
    found = classify(name, nn) if override in (None, "pii") else None  # header and values, any dtype (pii.py)
    pii = found[0] if found else None
    by_header = _id_by_header(name, nn) if override is None and pii is None else None
    if override:
        kind, reason, warning = override, "seed.columns override", _override_check(name, nn, override)
    elif pii is not None:
        kind, reason, warning = "pii", f"{pii.replace('_', ' ')} (personal data): {found[1]}", None
    elif by_header is not None:
        (kind, reason), warning = by_header, _mixed_warning(name, nn)
    else:
        (kind, reason), warning = _detect(nn), _mixed_warning(name, nn)
    dropped, generated = None, None
    if kind == "pii":
        generated = pii
        if generated is None:
            raise UserError(f"seed.columns.{name}: 'pii', but its values look like none of {', '.join(PII_TYPES)}; "
                            "use id (fresh values in the seed's shape) or text (left out)")
    elif kind == "id":
        generated = "id"
    elif kind == "text":
        dropped = f"{reason}; the tabular family does not model free text"
    elif kind == "numerical":
        numbers = _number_share(nn)[0].to_numpy(dtype=float, na_value=np.nan)
        if not np.isfinite(numbers).any():
            dropped = "no finite number in it"
        elif np.isinf(numbers).any():
            warning = _join(warning, f"{int(np.isinf(numbers).sum())} infinite values read as missing")
    elif kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(nn):
        parsed = _as_datetime(nn)
        if parsed.notna().sum() == 0:
            dropped = "no value parses as a date"
        elif parsed.isna().any():
            bad = nn[parsed.isna()]
            warning = _join(warning, f"{len(bad)} values are not dates (e.g. {_short(bad.iloc[0])}); read as missing")
    if dropped is None and base["distinct"] == 1 and kind in MODELLED:
        reason += "; constant"
        warning = _join(warning, f"constant: every row has {_short(nn.iloc[0])}, and so will every synthetic row")
    extra = _stats(nn, kind) if dropped is None and generated is None else {}
    return ColumnProfile(**base, kind=kind, reason=reason, dropped=dropped, generated=generated, warning=warning,
                         **extra)


def _id_by_header(name: str, nn: pd.Series) -> tuple[str, str] | None:
    """An id named by its header, as SDV reads `*_id` (subject_id, customerId, ID): whole numbers or short codes,
    more distinct values than a handful of levels. Ids that repeat across rows (a subject's visits) stay ids."""
    if not header_is_id(name) or pd.api.types.is_bool_dtype(nn) or pd.api.types.is_datetime64_any_dtype(nn):
        return None
    distinct = int(nn.nunique())
    if distinct <= _MAX_DISCRETE_LEVELS:
        return None
    if pd.api.types.is_numeric_dtype(nn):
        floats = nn.to_numpy(dtype=float)
        if not np.isfinite(floats).all() or np.any(np.mod(floats, 1) != 0):
            return None
    elif nn.astype(str).str.len().mean() > 40:
        return None
    repeats = f", each repeated {len(nn) / distinct:.1f} times on average" if distinct < len(nn) else ""
    return "id", f"header {name!r} names an id (as SDV reads `*_id`); {distinct} distinct values{repeats}"


def _leading_zero_codes(nn: pd.Series) -> bool:
    """Digit strings of one length, some starting with 0 (zip codes, account numbers): codes, not numbers."""
    if pd.api.types.is_numeric_dtype(nn) or not (nn.dtype == object or pd.api.types.is_string_dtype(nn)):
        return False
    text = nn.astype(str).str.strip()
    return bool(text.str.fullmatch(r"\d{2,}").all() and text.str.len().nunique() == 1
                and text.str.startswith("0").any())


def _detect(nn: pd.Series) -> tuple[str, str]:
    n, distinct = len(nn), nn.nunique()
    ratio = distinct / n
    if pd.api.types.is_bool_dtype(nn) or (nn.dtype == object and nn.map(_is_bool).all()):
        return "boolean", "boolean values"
    if _leading_zero_codes(nn):
        width = len(str(nn.iloc[0]).strip())
        if n >= 20 and ratio > 0.5:
            return "id", f"{width}-digit codes with leading zeros, {ratio:.0%} distinct: kept as text, id-like"
        return "categorical", f"{width}-digit codes with leading zeros ({distinct} distinct): kept as text"
    if pd.api.types.is_datetime64_any_dtype(nn):
        return "datetime", "datetime dtype"
    if pd.api.types.is_timedelta64_dtype(nn):
        return "numerical", "durations, modelled as seconds"
    numbers, share = _number_share(nn)
    if share == 1.0 or (share >= _MOSTLY_NUMBERS and not _parses_as_dates(nn.astype(str))):
        values = numbers.dropna().to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        integral = bool(len(finite) and np.all(np.mod(finite, 1) == 0))
        if integral and n >= 20 and distinct == n and _is_sequence(finite):
            return "id", "integer sequence, every value distinct (id-like)"
        if integral and distinct <= _MAX_DISCRETE_LEVELS and n >= 10 * distinct:
            # a handful of integer levels (loan terms of 12/24/36 months, family size) is modelled far better as
            # categories: continuous marginals smear mass between the levels (measured in docs/benchmarks.md)
            return "categorical", f"{distinct} integer levels"
        return "numerical", "numeric dtype" if share == 1.0 and nn.dtype != object else "numbers"
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


def _number_share(nn: pd.Series) -> tuple[pd.Series, float]:
    """The values as numbers (NaN where a value is not one) and the share of values that are numbers."""
    if pd.api.types.is_bool_dtype(nn):
        return nn.astype(float), 1.0
    if pd.api.types.is_numeric_dtype(nn):
        return nn, 1.0
    if pd.api.types.is_timedelta64_dtype(nn):
        return nn.dt.total_seconds(), 1.0
    if pd.api.types.is_datetime64_any_dtype(nn) or len(nn) == 0:
        return pd.Series(np.nan, index=nn.index, dtype=float), 0.0
    values = nn.astype(object).map(lambda v: np.nan if _is_bool(v) else v)  # True is not the number 1 here
    try:
        numbers = pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError):  # an object pandas cannot even try (e.g. bytes): one value at a time
        numbers = values.map(_one_number).astype(float)
    return numbers, float(numbers.notna().mean())


def _one_number(v) -> float:
    if isinstance(v, (int, float, np.number)) and not _is_bool(v):
        try:
            return float(v)
        except OverflowError:
            return np.nan
    if isinstance(v, str):
        try:
            return float(v.strip())
        except (ValueError, OverflowError):
            return np.nan
    return np.nan


def _mixed_warning(name: str, nn: pd.Series) -> str | None:
    """Says how a column holding both numbers and text was read, and which seed.columns override changes it."""
    numbers, share = _number_share(nn)
    if not 0.0 < share < 1.0:
        return None
    bad = nn[numbers.isna()]
    example = f"e.g. {_short(bad.iloc[0])} in data row {int(bad.index[0]) + 1}"
    if share >= _MOSTLY_NUMBERS:
        return (f"mixes numbers and text: {len(bad)} of {len(nn)} values are not numbers ({example}); they are read "
                f"as missing; set seed.columns.{name}: categorical to keep them as categories")
    return (f"mixes numbers and text ({example}); modelled as categories; set seed.columns.{name}: numerical to "
            "read the text values as missing instead")


def _override_check(name: str, nn: pd.Series, kind: str) -> str | None:
    """Refuses an override the values cannot take; says what it changes when it drops some values."""
    if kind == "numerical":
        numbers, share = _number_share(nn)
        if share == 0.0:
            raise UserError(f"seed.columns.{name}: 'numerical', but no value is a number (e.g. "
                            f"{_short(nn.iloc[0])}); use categorical")
        if share < 1.0:
            bad = nn[numbers.isna()]
            return f"{len(bad)} of {len(nn)} values are not numbers (e.g. {_short(bad.iloc[0])}); read as missing"
    if kind == "boolean" and not pd.api.types.is_bool_dtype(nn):
        bad = nn[_as_boolean(nn).isna()]
        if len(bad):
            raise UserError(f"seed.columns.{name}: 'boolean', but {_short(bad.iloc[0])} is not true/false, yes/no "
                            "or 1/0; use categorical")
    return None


_MOSTLY_NUMBERS = 0.9  # a text column this much made of numbers is a number column with a few stray values
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def _is_bool(v) -> bool:
    return isinstance(v, (bool, np.bool_))


def _as_number(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    numbers = s if pd.api.types.is_numeric_dtype(s) else _number_share(s)[0]
    if pd.api.types.is_float_dtype(numbers) and np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan)).any():
        numbers = numbers.replace([np.inf, -np.inf], np.nan)
    return numbers


def _as_boolean(s: pd.Series) -> pd.Series:
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return np.nan
        if _is_bool(v):
            return bool(v)
        text = str(v).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else np.nan

    return s.map(one).astype(object)


def _as_datetime(s: pd.Series) -> pd.Series:
    """Parsed dates; mixed or explicit time zones become naive UTC so the column has one dtype."""
    if pd.api.types.is_datetime64_any_dtype(s):
        parsed = s
    else:
        parsed = pd.to_datetime(s, errors="coerce", format="mixed")
        if not pd.api.types.is_datetime64_any_dtype(parsed):  # several UTC offsets: pandas leaves objects
            parsed = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _join(a: str | None, b: str) -> str:
    return b if not a else f"{a}; {b}"


def _short(v) -> str:
    text = repr(v.item() if isinstance(v, np.generic) else v)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_names(df: pd.DataFrame) -> None:
    for name in df.columns:
        if not isinstance(name, str):
            raise UserError(f"seed: column name {name!r} is not text; give every column a text name "
                            "(e.g. df.columns = df.columns.astype(str))")
    dupes = df.columns[df.columns.duplicated()]
    if len(dupes):
        raise UserError(f"seed: column {dupes[0]!r} appears more than once; rename one of them")


def _check_primary_key(name: str, s: pd.Series) -> None:
    fix = "choose another column or remove seed.primary_key"
    if s.isna().any():
        raise UserError(f"seed.primary_key: column {name!r} is missing in {int(s.isna().sum())} rows; a primary "
                        f"key needs a value in every row; {fix}")
    try:
        repeated = s[s.duplicated(keep=False)]
    except TypeError:
        raise UserError(f"seed.primary_key: column {name!r} holds nested values; {fix}") from None
    if len(repeated):
        raise UserError(f"seed.primary_key: column {name!r} repeats values (e.g. {_short(repeated.iloc[0])} in "
                        f"{int((s == repeated.iloc[0]).sum())} rows); a primary key must be unique; {fix}")


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
    if kind == "numerical":
        numbers = _as_number(nn).dropna()
        if not len(numbers):
            return {}
        values = numbers.to_numpy(dtype=float)
        return {"minimum": float(numbers.min()), "maximum": float(numbers.max()), "grid": grid.describe(values)}
    if kind == "datetime":
        parsed = _as_datetime(nn).dropna()
        return {"minimum": str(parsed.min()), "maximum": str(parsed.max())} if len(parsed) else {}
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
    if metadata.tables[table].primary_key:  # keys are generated apart from the model (families/identifiers.py)
        metadata.remove_primary_key(table_name=table)
    for col in profile.columns:
        if col.dropped or col.generated or col.name not in frame.columns:
            continue
        metadata.update_column(col.name, table_name=table, sdtype=sdtypes[col.kind])
    return metadata
