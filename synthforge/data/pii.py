"""Columns that hold personal data (emails, phone numbers, names, street addresses), recognised from the column name
and the values. Such a column is not a distribution to learn: the table families leave it out, a generated column
of the same type takes its place (families/identifiers.py), and the report grades it on format and on leaks."""

from __future__ import annotations

import re

import pandas as pd

PII_TYPES = ("email", "phone", "name", "first_name", "last_name", "address")

_EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().\-/]{7,20}(\s*(x|ext\.?)\s*\d{1,6})?$", re.IGNORECASE)
_PERSON = re.compile(r"^[^\W\d_][^\W\d_ .'\-]*([ .'\-]+[^\W\d_]+)*\.?$")
_HINTS = (
    ("first_name", re.compile(r"(^|_)(first|given|fore)_?name$")),
    ("last_name", re.compile(r"(^|_)(last|sur|family)_?name$|^surname$")),
    ("name", re.compile(r"^(full_?)?name$|(^|_)(customer|patient|person|user|client|contact|member|employee|owner)"
                        r"_?name$")),
    ("phone", re.compile(r"phone|(^|_)tel(ephone)?($|_)|mobile|(^|_)cell($|_)|(^|_)fax($|_)")),
    ("address", re.compile(r"address|(^|_)street($|_)|(^|_)addr($|_)")),
    ("email", re.compile(r"e_?mail")),
)
_SHARE = 0.9  # this share of the values must look the part
# a bare `name` column of companies or places (airlines, airports, hospitals) is not personal data
_ORGANISATION = re.compile(r"\b(?:inc|corp|corporation|company|co|llc|ltd|plc|gmbh|airlines?|airways|air|airport|"
                           r"aero|intl|international|regional|municipal|county|field|university|college|school|"
                           r"hospital|clinic|bank|group|services|cent(?:er|re)|station|base|club|association|"
                           r"institute|authority)\b", re.IGNORECASE)


def detect_pii(name: str, values: pd.Series) -> str | None:
    """The PII type of a column of text values (None if it does not look like one)."""
    text = values.dropna().astype(str).str.strip()
    if len(text) == 0 or pd.api.types.is_numeric_dtype(values):
        return None
    key = re.sub(r"[^a-z0-9]+", "_", _snake(name)).strip("_")
    hint = next((kind for kind, pattern in _HINTS if pattern.search(key)), None)
    sample = text.head(2000)
    if (sample.str.match(_EMAIL).mean()) >= _SHARE:
        return "email"
    digits = sample.str.count(r"\d")
    if hint == "phone" and (sample.str.match(_PHONE) & digits.between(7, 21)).mean() >= _SHARE:
        return "phone"
    if hint == "name" and sample.str.contains(_ORGANISATION).mean() >= 0.5:
        return None
    if hint in ("name", "first_name", "last_name"):
        capitalised = sample.map(lambda v: any(w[:1].isupper() for w in v.split()))  # "van Dijk" counts
        if (sample.str.match(_PERSON) & capitalised).mean() >= _SHARE:
            return hint
    if hint == "address" and (sample.str.contains(r"\d") & sample.str.contains(r"[A-Za-z]{2,}")).mean() >= _SHARE:
        return "address"
    return None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def looks_like(kind: str, values: pd.Series) -> pd.Series:
    """Per value: does it have the form of this PII type (the report's format check of generated columns)."""
    text = values.astype(str).str.strip()
    if kind == "email":
        return text.str.match(_EMAIL)
    if kind == "phone":
        return text.str.match(_PHONE) & text.str.count(r"\d").between(7, 21)
    if kind in ("name", "first_name", "last_name"):
        return text.str.match(_PERSON)
    if kind == "address":
        return text.str.contains(r"\d") & text.str.contains(r"[A-Za-z]{2,}")
    raise ValueError(f"unknown PII type {kind!r}; valid: {PII_TYPES}")
