"""Ids and personal data, generated instead of modelled: never a seed's value, never silently dropped.

- An id comes out unique and new, in the seed's format: integers continue after the seed's largest; `CUST-00042`
  style ids (one prefix, a number, one suffix) continue the numbering after the seed's largest number, with its
  zero padding; UUIDs are fresh UUID4s; any other id takes the shape of a seed id, character class by character
  class (A → a capital letter, 9 → a digit, other characters kept).
- Emails, phone numbers, names and addresses come from Faker (MIT), seeded per shard; emails carry the row number
  in their local part (unique) and an `example.*` domain (never a real mailbox).
- The seed's own values are kept only as salted SHA-256 digests, and any generated value whose digest matches one
  is drawn again, so no real value reaches the output. The share of missing values follows the seed.

The row number of a shard's first row (`start`) comes from the shard plan, so the rows do not depend on how many
workers wrote them.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthforge.data.profile import Profile

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PREFIXED = re.compile(r"^(\D*?)(\d+)(\D*)$")
_MAX_TRIES = 20
GENERATED_FILE = "generated.json"  # saved beside the model


@dataclass
class ColumnRule:
    name: str
    kind: str  # integer | prefixed | uuid | shape | email | phone | name | first_name | last_name | address
    null_fraction: float = 0.0
    prefix: str = ""
    suffix: str = ""
    width: int = 0
    next: int = 0
    shapes: list = field(default_factory=list)
    dtype: str = "object"


def _id_rule(name: str, s: pd.Series) -> ColumnRule:
    nn = s.dropna()
    base = {"name": name, "null_fraction": float(s.isna().mean()), "dtype": str(s.dtype)}
    if pd.api.types.is_integer_dtype(nn) or (pd.api.types.is_float_dtype(nn) and np.all(np.mod(nn, 1) == 0)):
        return ColumnRule(kind="integer", next=int(nn.max()) + 1 if len(nn) else 1, **base)
    text = nn.astype(str)
    if len(text) and text.str.match(_UUID).all():
        return ColumnRule(kind="uuid", **base)
    parts = text.str.extract(_PREFIXED)
    if len(text) and parts[1].notna().all() and parts[0].nunique() == 1 and parts[2].nunique() == 1:
        digits = parts[1]
        padded = digits.str.startswith("0").any()
        return ColumnRule(kind="prefixed", prefix=parts[0].iloc[0], suffix=parts[2].iloc[0],
                          width=int(digits.str.len().max()) if padded else 0,
                          next=int(digits.astype(int).max()) + 1, **base)
    shapes = sorted(set(text.head(5000).map(shape)))[:200]
    return ColumnRule(kind="shape", shapes=shapes or ["AAAA9999"], **base)


def shape(value: str) -> str:
    """An id's form: digits as 9, upper-case letters as A, lower-case as a, the rest as is (CUST-00042 -> AAAA-99999)."""
    return "".join("9" if ch.isdigit() else "A" if ch.isupper() else "a" if ch.islower() else ch for ch in value)


@dataclass
class GeneratedColumns:
    """The generated columns of a table and how each is made."""

    rules: list[ColumnRule]
    order: list = field(default_factory=list)  # every output column, in the seed's order
    salt: str = ""
    digests: dict = field(default_factory=dict)  # column -> salted SHA-256 digests of the seed's values
    locale: str = "en_US"

    @classmethod
    def fit(cls, frame: pd.DataFrame, profile: Profile, *, seed: int = 0) -> "GeneratedColumns":
        rules, digests = [], {}
        salt = hashlib.sha256(f"synthforge-{seed}".encode()).hexdigest()[:16]
        for col in profile.columns:
            if col.generated is None or col.name not in frame.columns:
                continue
            s = frame[col.name]
            rule = (_id_rule(col.name, s) if col.generated == "id" else
                    ColumnRule(name=col.name, kind=col.generated, null_fraction=float(s.isna().mean())))
            rules.append(rule)
            digests[col.name] = sorted({_digest(salt, v) for v in s.dropna().astype(str)})
        return cls(rules, profile.output_columns(), salt, digests)

    @property
    def columns(self) -> list[str]:
        return [r.name for r in self.rules]

    def fill(self, df: pd.DataFrame, *, start: int, seed: int) -> pd.DataFrame:
        """`df` with every generated column added, for rows numbered start, start + 1, ..."""
        if not self.rules:
            return df
        out = df.copy()
        rng = np.random.default_rng(seed)
        for rule in self.rules:
            taken = set(self.digests.get(rule.name, ()))
            values = _generate(rule, len(df), start, rng, self.locale)
            for _ in range(_MAX_TRIES):  # a generated value that equals a seed value is drawn again
                clash = np.array([_digest(self.salt, str(v)) in taken for v in values], dtype=bool)
                if not clash.any():
                    break
                values[clash] = _generate(rule, int(clash.sum()), start, rng, self.locale,
                                          numbers=np.flatnonzero(clash) + start)
            else:
                raise RuntimeError(f"column {rule.name}: could not draw values unlike the seed's")
            missing = rng.random(len(df)) < rule.null_fraction
            series = pd.Series(values, index=out.index, dtype=object)
            series[missing] = None
            out[rule.name] = _typed(series, rule)
        return out[[c for c in self.order if c in out.columns]]

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"rules": [asdict(r) for r in self.rules], "order": self.order,
                                          "salt": self.salt, "digests": self.digests, "locale": self.locale}))

    @classmethod
    def load(cls, path: Path) -> "GeneratedColumns":
        d = json.loads(Path(path).read_text())
        return cls([ColumnRule(**r) for r in d["rules"]], d["order"], d["salt"], d["digests"], d["locale"])


def _digest(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()


def _typed(s: pd.Series, rule: ColumnRule) -> pd.Series:
    if rule.kind == "integer":
        return s.astype("Int64") if s.isna().any() or not rule.dtype.startswith("int") else s.astype(rule.dtype)
    return s


def _generate(rule: ColumnRule, n: int, start: int, rng: np.random.Generator, locale: str,
              numbers: np.ndarray | None = None) -> np.ndarray:
    rows = np.arange(start, start + n) if numbers is None else numbers
    # a redraw of a clashing row gets a number past every row's, so it cannot clash with another row's id
    shift = 0 if numbers is None else 10**9
    if rule.kind == "integer":
        return np.array([rule.next + shift + int(r) for r in rows], dtype=object)
    if rule.kind == "prefixed":
        return np.array([f"{rule.prefix}{rule.next + shift + int(r):0{rule.width}d}{rule.suffix}" for r in rows],
                        dtype=object)
    if rule.kind == "uuid":
        return np.array([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in rows], dtype=object)
    if rule.kind == "shape":
        out = []
        for r in rows:
            form = rule.shapes[rng.integers(len(rule.shapes))]
            # a small shape ("99") cannot hold a unique id per row: the row number goes after it
            out.append(_from_shape(form, rng) + (str(int(r) + shift) if _space(form) < _MIN_SPACE else ""))
        return np.array(out, dtype=object)
    return _fake(rule.kind, rows, rng, locale)


_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


_MIN_SPACE = 10**9  # ids drawn from a shape with fewer values than this would collide across millions of rows


def _space(shape: str) -> float:
    return float(np.prod([{"9": 10, "A": 26, "a": 26}.get(ch, 1) for ch in shape]))


def _from_shape(shape: str, rng: np.random.Generator) -> str:
    pick = {"9": "0123456789", "A": _UPPER, "a": _LOWER}
    return "".join(pick[ch][rng.integers(len(pick[ch]))] if ch in pick else ch for ch in shape)


def _fake(kind: str, rows: np.ndarray, rng: np.random.Generator, locale: str) -> np.ndarray:
    from faker import Faker  # MIT; imported only when a table has such a column

    fake = Faker(locale)
    fake.seed_instance(int(rng.integers(2**31)))
    out = []
    for r in rows:
        if kind == "email":
            local = f"{fake.first_name()}.{fake.last_name()}.{int(r)}".lower().replace(" ", "").replace("'", "")
            out.append(f"{local}@example.{('com', 'org', 'net')[int(r) % 3]}")
        elif kind == "phone":
            out.append(fake.phone_number())
        elif kind == "first_name":
            out.append(fake.first_name())
        elif kind == "last_name":
            out.append(fake.last_name())
        elif kind == "name":
            out.append(f"{fake.first_name()} {fake.last_name()}")
        elif kind == "address":
            out.append(fake.address().replace("\n", ", "))
        else:
            raise ValueError(f"no generator for {kind!r}")
    return np.array(out, dtype=object)
