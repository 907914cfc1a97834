"""Ids and personal data, generated instead of modelled: in the seed's format, never a seed's value, never silently
dropped.

- An id comes out new, in the seed's format, numbered from a random offset (never from the seed's largest id, which
  would tell the seed's size): integers and `CUST-00042` style ids (one prefix, a number, one suffix, its zero
  padding) take offset + row number, the offset drawn in [10^w, 10^(w+1)) where w is the digit count of the seed's
  largest number, so no generated id can equal a seed id; ids that repeat across rows (a subject's visits) repeat as
  often on average; UUIDs are fresh UUID4s; any other id takes the shape of a seed id, character class by character
  class (A → a capital letter, 9 → a digit, other characters kept).
- Personal data keeps the seed's format and dtype: phone numbers are valid numbers of the seed's region
  (`phonenumbers`) written in a seed layout ((555) 010-2030, 5550102030, an integer); card numbers keep the seed's
  lengths and first digit (the card network) and pass the Luhn check; IBANs keep the country, length and layout with
  valid check digits; postcodes, national ids and account numbers keep a seed shape (leading zeros, digit count,
  text); birth dates follow the seed's distribution (21 quantiles, each rounded to a month) in its date format;
  names, emails and addresses come from Faker (MIT) in the header's language, first/last/full as the column holds,
  in the seed's case (lower case seeds give lower case names); emails carry the row number (unique) and an
  `example.*` domain (never a real mailbox).
- Never a seed value: any generated value whose keyed digest (HMAC-SHA256, key from `secrets.token_bytes`) matches
  one of the seed's values, compared on their canonical form (digits of a phone number, a name in lower case), is
  drawn again. The key and the digests live in memory for the run only and are never written: `save` writes the
  rules (formats, offsets), and a resumed run rebuilds the digests from the seed it reads anyway (`guard`). A
  pickle of the columns holds neither; a Ray worker gets them from the driver in memory (`secret`, `arm`).
  The share of missing values follows the seed.

The row number of a shard's first row (`start`) comes from the shard plan, so the rows do not depend on how many
workers wrote them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthforge.data.pii import iban_valid, luhn_digit, phone_region, words
from synthforge.data.profile import Profile

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PREFIXED = re.compile(r"^(\D*?)(\d+)(\D*)$")
_MAX_TRIES = 20
GENERATED_FILE = "generated.json"  # saved beside the model: rules only, no digest of any seed value
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%Y%m%d",
                 "%Y-%m-%d %H:%M:%S")
# header language -> Faker locale (names and addresses in the seed's language)
_LOCALES = {"nombre": "es_ES", "apellido": "es_ES", "apellidos": "es_ES", "telefono": "es_ES", "titular": "es_ES",
            "nom": "fr_FR", "prenom": "fr_FR", "titulaire": "fr_FR", "telephone": "fr_FR",
            "vorname": "de_DE", "nachname": "de_DE", "inhaber": "de_DE", "telefon": "de_DE",
            "nome": "it_IT", "cognome": "it_IT"}
_CODES = ("postcode", "national_id", "account_number")


@dataclass
class ColumnRule:
    name: str
    kind: str  # integer | prefixed | uuid | shape | email | phone | name | first_name | last_name | address |
    #            card_number | iban | postcode | national_id | account_number | birth_date
    null_fraction: float = 0.0
    prefix: str = ""
    suffix: str = ""
    width: int = 0
    next: int = 0  # ids: the random offset the numbering starts from
    shapes: list = field(default_factory=list)
    dtype: str = "object"
    repeat: float = 1.0  # ids: rows per id (an id that repeats across rows)
    region: str = ""  # phones: the seed's region; IBANs: the country
    case: str = ""  # names: lower | upper | "" (as Faker writes them)
    lengths: list = field(default_factory=list)  # cards: digit counts; phones: national digit count
    heads: list = field(default_factory=list)  # cards: first digits (the network)
    quantiles: list = field(default_factory=list)  # birth dates: 21 quantiles as days since 1970, month-rounded
    date_format: str = ""
    locale: str = "en_US"


def _id_rule(name: str, s: pd.Series, rng: np.random.Generator) -> ColumnRule:
    nn = s.dropna()
    base = {"name": name, "null_fraction": float(s.isna().mean()), "dtype": str(s.dtype),
            "repeat": max(1.0, len(nn) / max(nn.nunique(), 1))}
    if pd.api.types.is_integer_dtype(nn) or (pd.api.types.is_float_dtype(nn) and np.all(np.mod(nn, 1) == 0)):
        return ColumnRule(kind="integer", next=_offset(int(nn.abs().max()) if len(nn) else 0, rng), **base)
    text = nn.astype(str)
    if len(text) and text.str.match(_UUID).all():
        return ColumnRule(kind="uuid", **base)
    parts = text.str.extract(_PREFIXED)
    if len(text) and parts[1].notna().all() and parts[0].nunique() == 1 and parts[2].nunique() == 1:
        digits = parts[1]
        padded = digits.str.startswith("0").any()
        return ColumnRule(kind="prefixed", prefix=parts[0].iloc[0], suffix=parts[2].iloc[0],
                          width=int(digits.str.len().max()) if padded else 0,
                          next=_offset(int(digits.astype(int).max()), rng), **base)
    shapes = sorted(set(text.head(5000).map(shape)))[:200]
    return ColumnRule(kind="shape", shapes=shapes or ["AAAA9999"], **base)


def _offset(largest: int, rng: np.random.Generator) -> int:
    """A random start in [10^w, 10^(w+1)), w the digit count of the seed's largest id: above every seed id, and
    saying nothing of the seed's size beyond the ids' own width."""
    w = len(str(largest))
    return int(rng.integers(10**w, 10**(w + 1)))


def _pii_rule(name: str, kind: str, s: pd.Series) -> ColumnRule:
    nn = s.dropna()
    rule = ColumnRule(name=name, kind=kind, null_fraction=float(s.isna().mean()), dtype=str(s.dtype))
    numeric = pd.api.types.is_numeric_dtype(nn)
    text = (nn.astype("int64").astype(str) if numeric else nn.astype(str).str.strip()).head(5000)
    if kind in ("phone", "card_number") + _CODES:  # layouts of numbers and codes; a name's length is nobody's business
        layouts = text.map(_phone_layout if kind == "phone" else shape).value_counts()
        rule.shapes = list(layouts.index[:20]) if len(layouts) else []
    digits = text.str.replace(r"\D", "", regex=True)
    if kind in ("name", "first_name", "last_name", "email", "address"):
        letters = text.str.replace(r"[^A-Za-z]", "", regex=True)
        rule.case = "lower" if (letters == letters.str.lower()).mean() >= 0.9 else \
            "upper" if (letters == letters.str.upper()).mean() >= 0.9 and kind != "email" else ""
        rule.locale = next((_LOCALES[w] for w in words(name) if w in _LOCALES), "en_US")
    elif kind == "phone":
        region, share = phone_region(text)
        # numbers that are often invalid (made up, or ambiguous between regions): random digits in the seed's layouts
        rule.region = region if share >= 0.8 else ""
        rule.lengths = [int(x) for x in digits.str.len().value_counts().index[:1]]
    elif kind == "card_number":
        counts = digits.str.len().value_counts()
        rule.lengths = [int(x) for x in counts.index[counts >= 0.05 * counts.sum()]]
        heads = digits.str[0].value_counts()
        rule.heads = [str(x) for x in heads.index[heads >= 0.05 * heads.sum()]]
    elif kind == "iban":
        plain = text.str.replace(" ", "").str.upper()
        rule.region = plain.str[:2].value_counts().index[0]
        rule.shapes = list(plain[plain.str[:2] == rule.region].str[4:].map(shape).value_counts().index[:5])
        rule.width = 4 if text.str.contains(" ").mean() >= 0.5 else 0  # written in groups of four
    elif kind == "birth_date":
        parsed = nn if pd.api.types.is_datetime64_any_dtype(nn) else pd.to_datetime(text, errors="coerce",
                                                                                      format="mixed")
        parsed = parsed.dropna()
        days = (parsed.dt.to_period("M").dt.to_timestamp() - pd.Timestamp("1970-01-01")).dt.days
        rule.quantiles = [int(q) for q in np.quantile(days, np.linspace(0, 1, 21))] if len(days) else [0, 36500]
        rule.date_format = "" if pd.api.types.is_datetime64_any_dtype(nn) else _date_format(text)
    return rule


def _phone_layout(value: str) -> str:
    """A phone number's layout: digits as 9, the rest kept (an extension's x, brackets), and a leading +country code
    kept as written (+44 115 496 0777 -> +44 999 999 9999)."""
    import phonenumbers

    head = ""
    if value.startswith("+"):
        try:
            head = f"+{phonenumbers.parse(value, None).country_code}"
        except phonenumbers.NumberParseException:
            head = ""
    if head and value.startswith(head):
        return head + re.sub(r"\d", "9", value[len(head):])
    return re.sub(r"\d", "9", value)


def _date_format(text: pd.Series) -> str:
    sample = text.head(200)
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        if parsed.notna().all() and (parsed.dt.strftime(fmt) == sample).all():
            return fmt
    return "%Y-%m-%d"


def shape(value: str) -> str:
    """An id's form: digits as 9, upper-case letters as A, lower-case as a, the rest as is (CUST-00042 -> AAAA-99999)."""
    return "".join("9" if ch.isdigit() else "A" if ch.isupper() else "a" if ch.islower() else ch for ch in value)


def canonical(kind: str, value) -> str:
    """The form two values are compared in: a phone, card, code or IBAN by its letters and digits (so
    (555) 010-2030 equals 5550102030), a name or email in lower case, a number without a trailing .0."""
    text = str(value).strip()
    text = text[:-2] if text.endswith(".0") else text
    if kind in ("phone", "card_number", "iban") + _CODES:
        return re.sub(r"[^0-9A-Za-z]", "", text).upper()
    if kind in ("name", "first_name", "last_name", "email", "address"):
        return " ".join(text.lower().split())
    if kind == "birth_date":
        return text[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", text) else text
    return text


@dataclass
class GeneratedColumns:
    """The generated columns of a table and how each is made. The seed's values are held only as keyed digests,
    in memory (`guard`); nothing derived from a seed value's identity is saved."""

    rules: list[ColumnRule]
    order: list = field(default_factory=list)  # every output column, in the seed's order
    locale: str = "en_US"
    _key: bytes = field(default=b"", repr=False)
    _digests: dict = field(default_factory=dict, repr=False)  # column -> set of HMAC digests of seed values

    @classmethod
    def fit(cls, frame: pd.DataFrame, profile: Profile, *, seed: int = 0) -> "GeneratedColumns":
        rng = np.random.default_rng(seed)
        rules = []
        for col in profile.columns:
            if col.generated is None or col.name not in frame.columns:
                continue
            s = frame[col.name]
            rules.append(_id_rule(col.name, s, rng) if col.generated == "id" else _pii_rule(col.name, col.generated, s))
        return cls(rules, profile.output_columns()).guard(frame)

    def guard(self, frame: pd.DataFrame) -> "GeneratedColumns":
        """This object, holding a fresh secret key and the keyed digests of the seed's values of every generated
        column (in memory only: never saved), so `fill` never writes a seed value."""
        self._key = secrets.token_bytes(32)
        self._digests = {r.name: {self._digest(r.kind, v) for v in frame[r.name].dropna()}
                         for r in self.rules if r.name in frame.columns}
        return self

    def _digest(self, kind: str, value) -> bytes:
        return hmac.new(self._key, canonical(kind, value).encode(), hashlib.sha256).digest()

    def __getstate__(self):
        # a pickle never holds the key or the digests: pickles go where memory does not (Ray's object store spills
        # to disk), and a key beside its digests lets a dictionary of likely values be tested offline. Another
        # process gets them apart, in memory (`secret`, `arm`; engine/ray_executor.py)
        return {**self.__dict__, "_key": b"", "_digests": {}}

    @property
    def guarded(self) -> bool:
        """Whether `fill` keeps seed values out (fitted, or `guard`-ed / `arm`-ed since loading or unpickling)."""
        return bool(self._key)

    def secret(self) -> tuple[bytes, dict]:
        """The key and the digests (column -> set), for another process of this run to `arm` with; never written."""
        return self._key, self._digests

    def arm(self, key: bytes, digests: dict) -> "GeneratedColumns":
        """This object guarded by another process's `secret`: its `fill` rejects exactly the values that one does."""
        self._key, self._digests = key, digests
        return self

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
            taken = self._digests.get(rule.name, set())
            values = _generate(rule, len(df), start, rng, self.locale)
            for _ in range(_MAX_TRIES):  # a generated value that equals a seed value is drawn again
                clash = np.array([v is not None and self._digest(rule.kind, v) in taken for v in values], dtype=bool) \
                    if taken else np.zeros(len(values), dtype=bool)
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
        """The rules (formats, offsets, month-rounded date quantiles); never the key or a digest."""
        Path(path).write_text(json.dumps({"rules": [asdict(r) for r in self.rules], "order": self.order,
                                          "locale": self.locale}))

    @classmethod
    def load(cls, path: Path) -> "GeneratedColumns":
        """The saved rules, without digests: call `guard(seed_frame)` before `fill` to keep seed values out."""
        d = json.loads(Path(path).read_text())
        return cls([ColumnRule(**r) for r in d["rules"]], d["order"], d.get("locale", "en_US"))


def _typed(s: pd.Series, rule: ColumnRule) -> pd.Series:
    if rule.dtype.startswith(("int", "Int", "float")) and rule.kind not in ("uuid", "shape", "prefixed"):
        numbers = pd.to_numeric(s, errors="coerce")
        if s.isna().any() or not rule.dtype.startswith("int"):
            return numbers.astype("Int64")
        return numbers.astype(rule.dtype)
    if rule.dtype.startswith("datetime"):
        return pd.to_datetime(s)
    return s


def _generate(rule: ColumnRule, n: int, start: int, rng: np.random.Generator, locale: str,
              numbers: np.ndarray | None = None) -> np.ndarray:
    rows = np.arange(start, start + n) if numbers is None else numbers
    # a redraw of a clashing row gets a number past every row's, so it cannot clash with another row's id
    shift = 0 if numbers is None else 10**9
    if rule.kind == "integer":
        return np.array([rule.next + shift + int(int(r) // rule.repeat) for r in rows], dtype=object)
    if rule.kind == "prefixed":
        return np.array([f"{rule.prefix}{rule.next + shift + int(int(r) // rule.repeat):0{rule.width}d}"
                         f"{rule.suffix}" for r in rows], dtype=object)
    if rule.kind == "uuid":
        return np.array([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in rows], dtype=object)
    if rule.kind == "shape":
        out = []
        for r in rows:
            form = rule.shapes[rng.integers(len(rule.shapes))]
            # a small shape ("99") cannot hold a unique id per row: the row number goes after it
            out.append(_from_shape(form, rng) + (str(int(r) + shift) if _space(form) < _MIN_SPACE else ""))
        return np.array(out, dtype=object)
    if rule.kind == "phone" and rule.region:
        return np.array([_phone(rule, rng) for _ in rows], dtype=object)
    if rule.kind == "card_number":
        return np.array([_card(rule, rng) for _ in rows], dtype=object)
    if rule.kind == "iban":
        return np.array([_iban(rule, rng) for _ in rows], dtype=object)
    if rule.kind == "birth_date":
        return _birth_dates(rule, len(rows), rng)
    if rule.kind == "phone" and rule.shapes:  # phones of no known region: the seed's layouts
        return np.array([_phone_from_layout(rule.shapes[rng.integers(len(rule.shapes))], rng) for _ in rows],
                        dtype=object)
    if rule.kind in _CODES:
        return np.array([_from_shape(rule.shapes[rng.integers(len(rule.shapes))], rng) for _ in rows], dtype=object)
    return _fake(rule, rows, rng, rule.locale if rule.locale != "en_US" else locale)


_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


_MIN_SPACE = 10**9  # ids drawn from a shape with fewer values than this would collide across millions of rows


def _space(shape: str) -> float:
    return float(np.prod([{"9": 10, "A": 26, "a": 26}.get(ch, 1) for ch in shape]))


def _from_shape(shape: str, rng: np.random.Generator) -> str:
    pick = {"9": "0123456789", "A": _UPPER, "a": _LOWER}
    return "".join(pick[ch][rng.integers(len(pick[ch]))] if ch in pick else ch for ch in shape)


def _phone_from_layout(layout: str, rng: np.random.Generator) -> str:
    """Random digits in a seed phone layout, the country code and any letters kept (numbers of no known region)."""
    head = re.match(r"^\+\d+", layout)
    keep = head.group(0) if head else ""
    return keep + "".join(str(rng.integers(10)) if ch == "9" else ch for ch in layout[len(keep):])


def _digits(n: int, rng: np.random.Generator) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, n))


def _head(layout: str) -> str:
    """A layout's leading +country code ("+39" of "+39 999 999"), kept as written."""
    head = re.match(r"^\+\d+(?=\D)", layout)
    return head.group(0) if head else ""


def _into(layout: str, digits: str) -> str:
    """digits written into a layout's 9s ("(999) 999-9999"), when the counts agree; else the digits as they are.
    A leading +country code is kept as written (+39 999 ... keeps its 9)."""
    keep = _head(layout)
    if layout[len(keep):].count("9") != len(digits):
        return digits
    it = iter(digits)
    return keep + "".join(next(it) if ch == "9" else ch for ch in layout[len(keep):])


def _phone(rule: ColumnRule, rng: np.random.Generator) -> str:
    """A number `phonenumbers` calls valid for the seed's region, in a seed layout with as many digits."""
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region(rule.region)
    example = phonenumbers.example_number(rule.region)
    length = len(str(example.national_number)) if example else 10
    cc = str(meta.country_code) if meta else ""
    number = None
    for _ in range(200):
        national = str(rng.integers(1, 10)) + _digits(length - 1, rng)
        parsed = phonenumbers.parse(national, rule.region)
        if phonenumbers.is_valid_number(parsed):
            number = national
            break
    number = number or str(example.national_number)
    layout = rule.shapes[rng.integers(len(rule.shapes))] if rule.shapes else ""
    if layout.startswith("+") and not re.match(rf"^\+{cc}\D", layout):
        layout = "+"  # another country's layout: the region's own international form below
    # the seed may write the country code (after a +) or a trunk 0
    for digits in ((number, cc + number) if layout.startswith("+") else (number, "0" + number)):
        if layout[len(_head(layout)):].count("9") == len(digits):
            return _into(layout, digits)
    if rule.dtype.startswith(("int", "Int", "float")):
        return number
    # no seed layout has this many digits: the region's own way of writing it, international if the seed's is
    style = phonenumbers.PhoneNumberFormat.INTERNATIONAL if layout.startswith("+") else \
        phonenumbers.PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(phonenumbers.parse(number, rule.region), style)


def _card(rule: ColumnRule, rng: np.random.Generator) -> str:
    length = int(rule.lengths[rng.integers(len(rule.lengths))]) if rule.lengths else 16
    head = rule.heads[rng.integers(len(rule.heads))] if rule.heads else "4"
    body = head + _digits(length - 1 - len(head), rng)
    number = body + luhn_digit(body)
    layout = next((s for s in rule.shapes if s.count("9") == length), "")
    return _into(layout, number) if layout else number


def _iban(rule: ColumnRule, rng: np.random.Generator) -> str:
    bban = _from_shape(rule.shapes[rng.integers(len(rule.shapes))] if rule.shapes else "9" * 18, rng)
    check = 98 - int("".join(str(int(c, 36)) for c in bban + rule.region + "00")) % 97
    value = f"{rule.region}{check:02d}{bban}"
    assert iban_valid(value)
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if rule.width else value


def _birth_dates(rule: ColumnRule, n: int, rng: np.random.Generator) -> np.ndarray:
    """Days drawn between the seed's quantiles (each 5 % of the seed), at a uniform point of that span."""
    q = np.asarray(rule.quantiles, dtype=float)
    at = rng.integers(0, len(q) - 1, n)
    days = q[at] + rng.random(n) * (q[at + 1] - q[at] + 28)
    dates = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(days), unit="D")
    if not rule.date_format:
        return np.array(list(dates), dtype=object)
    return np.array(list(dates.strftime(rule.date_format)), dtype=object)


def _fake(rule: ColumnRule, rows: np.ndarray, rng: np.random.Generator, locale: str) -> np.ndarray:
    from faker import Faker  # MIT; imported only when a table has such a column

    fake = Faker(locale)
    fake.seed_instance(int(rng.integers(2**31)))
    kind = rule.kind
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
    if rule.case == "lower":
        out = [v.lower() for v in out]
    elif rule.case == "upper":
        out = [v.upper() for v in out]
    return np.array(out, dtype=object)


__all__ = ["ColumnRule", "GENERATED_FILE", "GeneratedColumns", "canonical", "shape"]
