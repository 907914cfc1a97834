"""Columns that hold personal data, recognised from the header and the values, whatever their dtype.

Such a column is not a distribution to learn: the table families leave it out, a generated column of the same type
and format takes its place (families/identifiers.py), and the report grades it on format and on leaks.

Evidence, as SDV's metadata detection reads it (`Metadata.detect_from_dataframe`: `phone_number`, `first_name`,
`*_id` ...), plus more languages and the values themselves:

- the header, split into words (snake_case, camelCase, accents dropped): `telefon`, `téléphone`, `nombre`, `holder`,
  `fake_first_name`, `plz`, `fecha_nacimiento` ...;
- value shapes, which also work without a known header: Luhn-valid 13–19 digit numbers (cards), IBAN check digits
  (ISO 13616 mod 97), numbers that `phonenumbers` (Google's libphonenumber, Apache-2.0) calls valid phone numbers of
  one region, and values whose first word is a first name of Faker's name lists (a name column under any header).

`classify` returns the type and the reason in words (the profile stores it; `init` and the report print it).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import numpy as np
import pandas as pd

PII_TYPES = ("email", "phone", "name", "first_name", "last_name", "address", "card_number", "iban", "postcode",
             "birth_date", "national_id", "account_number")

_EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().\-/]{7,20}(\s*(x|ext\.?)\s*\d{1,6})?$", re.IGNORECASE)
_PERSON = re.compile(r"^[^\W\d_][^\W\d_ .'\-]*([ .'\-]+[^\W\d_]+)*\.?$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 \-./]{2,40}$")

# header words (after _words: lower case, no accents, split on _ / camelCase / spaces), per type, several languages
_WORDS = {
    "first_name": {"firstname", "givenname", "forename", "vorname", "prenom", "nombrepila"},
    "last_name": {"lastname", "surname", "familyname", "nachname", "apellido", "apellidos", "cognome",
                  "nomdefamille", "achternaam"},
    "name": {"name", "fullname", "nombre", "nom", "nome", "naam", "holder", "owner", "titular", "titulaire",
             "inhaber", "accountholder", "cardholder", "nombrecompleto", "nomcomplet", "patientname",
             "customername", "clientname", "personname", "username_full"},
    "phone": {"phone", "phonenumber", "telephone", "telefon", "telefono", "telefone", "tel", "mobile", "mobil",
              "movil", "handy", "cell", "cellphone", "celular", "fax", "portable", "gsm"},
    "email": {"email", "mail", "emailaddress", "correo", "courriel"},
    "address": {"address", "street", "streetaddress", "addr", "direccion", "adresse", "indirizzo", "strasse",
                "calle", "rue", "line1"},
    "card_number": {"card", "cardnumber", "creditcard", "creditcardnumber", "ccnumber", "pan", "tarjeta", "carte",
                    "karte", "kreditkarte", "cartao"},
    "iban": {"iban"},
    "postcode": {"zip", "zipcode", "postcode", "postalcode", "postal", "plz", "cp", "cap", "codigopostal",
                 "codepostal", "postleitzahl", "cep"},
    "birth_date": {"birth", "birthdate", "dateofbirth", "dob", "birthday", "geburtsdatum", "geburtstag",
                   "fechanacimiento", "nacimiento", "naissance", "datenaissance", "nascita", "datanascita"},
    "national_id": {"ssn", "socialsecurity", "socialsecuritynumber", "nationalid", "nin", "nino", "dni", "nie",
                    "nif", "nir", "insee", "taxid", "tin", "sin", "bsn", "passport", "codicefiscale", "curp",
                    "steuerid", "personalausweis"},
    "account_number": {"account", "accountnumber", "acct", "accountno", "konto", "kontonummer", "cuenta",
                       "compte", "conto", "bankaccount"},
}
# a name column under these words is a person's only when a word like this says whose (customer_name, not
# product_name); `name` alone is decided by the values
_PERSON_OWNERS = {"customer", "patient", "person", "user", "client", "contact", "member", "employee", "owner",
                  "holder", "fake", "cliente", "paciente", "kunde", "full", "display", "legal", "account", "card",
                  "student", "subject", "driver", "applicant", "borrower", "beneficiary"}
_SHARE = 0.9  # this share of the values must look the part
_NAME_SHARE = 0.5  # values whose first word is a known first name, for a name column under an unknown header
# a bare `name` column of companies or places (airlines, airports, hospitals) is not personal data
_ORGANISATION = re.compile(r"\b(?:inc|corp|corporation|company|co|llc|ltd|plc|gmbh|airlines?|airways|air|airport|"
                           r"aero|intl|international|regional|municipal|county|field|university|college|school|"
                           r"hospital|clinic|bank|group|services|cent(?:er|re)|station|base|club|association|"
                           r"institute|authority)\b", re.IGNORECASE)
_LABELS = {"name": "a person's name", "first_name": "a first name", "last_name": "a last name",
           "phone": "a phone number", "email": "an email", "address": "an address", "card_number": "a card number",
           "iban": "an IBAN", "postcode": "a postcode", "birth_date": "a birth date", "national_id": "a national id",
           "account_number": "an account number"}
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "PT", "IE", "SE", "CA", "AU", "IN",
                 "BR", "MX", "AR", "PL")


def words(name: str) -> list[str]:
    """A header's words: accents dropped, camelCase and any non-alphanumeric character split, lower case."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    plain = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", plain)
    return [w for w in re.split(r"[^A-Za-z0-9]+", plain.lower()) if w]


def header_kind(name: str) -> str | None:
    """The personal-data type a header names (None if it names none). Single words and joined neighbours both count
    (`first_name` -> firstname, `fecha_nacimiento` -> fechanacimiento); `fake_first_name` is a first name."""
    ws = words(name)
    grams = set(ws) | {a + b for a, b in zip(ws, ws[1:])} | {"".join(ws)}
    for kind in ("first_name", "last_name", "email", "birth_date", "card_number", "iban", "national_id",
                 "postcode", "phone", "account_number", "address"):
        if grams & _WORDS[kind]:
            return kind
    if ws and (ws == ["name"] or ws[-1] in ("name", "nombre", "nom", "nome") and (len(ws) == 1 or ws[-2] in
                                                                                   _PERSON_OWNERS)):
        return "name"
    if grams & (_WORDS["name"] - {"name", "nombre", "nom", "nome"}):
        return "name"
    return None


def header_is_id(name: str) -> bool:
    """SDV's rule: one of the header's words is `id` (customer_id, subjectId, ID), or it ends in `key`/`uuid`."""
    ws = words(name)
    return "id" in ws or (bool(ws) and ws[-1] in ("uuid", "guid"))


def detect_pii(name: str, values: pd.Series) -> str | None:
    """The personal-data type of a column (None if it does not look like one)."""
    found = classify(name, values)
    return found[0] if found else None


def classify(name: str, values: pd.Series) -> tuple[str, str] | None:
    """(type, why) for a column of personal data, from its header and values of any dtype; None otherwise."""
    nn = values.dropna()
    if len(nn) == 0 or pd.api.types.is_bool_dtype(nn):
        return None
    hint = header_kind(name)
    said = f"header {name!r} means {_LABELS[hint]}" if hint else ""
    if pd.api.types.is_datetime64_any_dtype(nn):
        return ("birth_date", f"{said} and the values are dates (a quasi-identifier)") if hint == "birth_date" \
            else None
    numeric = pd.api.types.is_numeric_dtype(nn)
    if numeric:
        floats = nn.to_numpy(dtype=float)
        if not np.isfinite(floats).all() or np.abs(floats).max() >= 1e18 or np.any(np.mod(floats, 1) != 0):
            return None  # fractions (and infinities) are measurements, not codes
    text = (nn.astype("int64").astype(str) if numeric else nn.astype(str).str.strip()).head(2000)
    digits = text.str.replace(r"\D", "", regex=True)
    n_digits = digits.str.len()
    distinct = text.nunique() / len(text)
    if not numeric and text.str.match(_EMAIL).mean() >= _SHARE:
        return "email", (said + " and " if hint == "email" else "") + f"{text.str.match(_EMAIL).mean():.0%} of " \
                                                                     "values are email addresses"
    if hint == "birth_date":
        parsed = pd.to_datetime(text, errors="coerce", format="mixed") if not numeric else None
        if parsed is not None and parsed.notna().mean() >= _SHARE:
            return "birth_date", f"{said} and {parsed.notna().mean():.0%} of values are dates (a quasi-identifier)"
    if not numeric and text.str.replace(" ", "").str.upper().str.match(_IBAN).mean() >= _SHARE:
        ok = text.map(iban_valid).mean()
        if ok >= _SHARE:
            return "iban", f"{ok:.0%} of values pass the IBAN check digits (mod 97)"
    card_shape = n_digits.between(13, 19) & (text.str.fullmatch(r"[\d \-]+") if not numeric else True)
    if card_shape.mean() >= _SHARE:
        luhn = digits.map(luhn_valid).mean()
        if luhn >= _SHARE or (hint == "card_number" and luhn >= 0.5):
            return "card_number", (f"{said}; " if hint == "card_number" else "") + \
                f"{luhn:.0%} of values are 13-19 digit numbers that pass the Luhn check (card numbers)"
    if hint == "phone" or (distinct >= 0.5 and n_digits.between(7, 15).mean() >= _SHARE):
        shaped = (n_digits.between(7, 15) & (text.str.match(_PHONE) if not numeric else True)).mean()
        region, valid = phone_region(text)
        if hint == "phone" and shaped >= _SHARE:
            return "phone", f"{said}; {shaped:.0%} have a phone number's form" + \
                (f", {valid:.0%} are valid {region} numbers" if region else "")
        if hint is None and region and valid >= _SHARE and n_digits.nunique() == 1 and n_digits.iloc[0] >= 9:
            return "phone", f"{valid:.0%} of values are valid {region} phone numbers (phonenumbers)"
    if hint == "postcode" and text.str.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 \-]{1,9}").mean() >= _SHARE \
            and n_digits.gt(0).mean() >= _SHARE and text.nunique() >= 20:
        return "postcode", f"{said} and the values are short codes (a quasi-identifier); kept as text"
    if hint in ("national_id", "account_number") and text.str.match(_CODE).mean() >= _SHARE \
            and n_digits.ge(4).mean() >= _SHARE and distinct >= 0.5:
        return hint, f"{said} and {distinct:.0%} of values are distinct codes"
    if numeric:
        return None
    if hint == "phone" and text.str.match(_PHONE).mean() >= _SHARE:
        return "phone", f"{said} and the values have a phone number's form"
    if hint == "name" and text.str.contains(_ORGANISATION).mean() >= 0.5:
        return None
    person = text.str.match(_PERSON)
    if hint in ("first_name", "last_name") and person.mean() >= _SHARE:
        return hint, f"{said} and {person.mean():.0%} of values are words"
    known = name_share(text)
    one_word = (text.str.count(r"\s+") == 0).mean() >= 0.8
    if hint == "name":
        capitalised = text.map(lambda v: any(w[:1].isupper() for w in v.split()))  # "van Dijk" counts
        if (person & capitalised).mean() >= _SHARE or (person.mean() >= _SHARE and known >= 0.3):
            return _name_kind(text, one_word), f"{said} and {person.mean():.0%} of values look like names"
    # values alone: at least 10 different ones, so a label of a few words ("good", "bad": Faker knows a Goode)
    # in a tiny seed is not taken for names
    if hint is None and person.mean() >= _SHARE and known >= (0.8 if one_word else _NAME_SHARE) and distinct >= 0.2 \
            and text.nunique() >= 10:
        return _name_kind(text, one_word), f"{known:.0%} of values start with a first name from Faker's name lists"
    if hint == "address" and (text.str.contains(r"\d") & text.str.contains(r"[A-Za-z]{2,}")).mean() >= _SHARE:
        return "address", f"{said} and the values hold numbers and words"
    return None


def _name_kind(text: pd.Series, one_word: bool) -> str:
    """A name column of single words is a first or a last name, whichever list knows more of them."""
    if not one_word:
        return "name"
    first, last = _name_lists()
    lower = text.str.lower()
    return "last_name" if lower.isin(last).mean() > lower.isin(first).mean() else "first_name"


def name_share(text: pd.Series) -> float:
    """The share of values whose first word is a first name or whose last word is a last name (Faker's lists)."""
    first, last = _name_lists()
    lower = text.str.lower().str.split()
    return float(lower.map(lambda ws: bool(ws) and (ws[0] in first or ws[-1] in last)).mean())


@cache
def _name_lists() -> tuple[frozenset, frozenset]:
    import importlib

    first, last = set(), set()
    for locale in ("en_US", "en_GB", "es_ES", "fr_FR", "de_DE", "it_IT", "pt_BR", "nl_NL"):
        p = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr, into in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                           ("last_names", last)):
            into.update(str(n).lower() for n in getattr(p, attr, ()))
    return frozenset(first), frozenset(last - {"mann", "de"})


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of card numbers (ISO/IEC 7812-1)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def luhn_digit(body: str) -> str:
    """The check digit that makes body + digit Luhn-valid."""
    return str((10 - sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
                         for i, d in enumerate(int(c) for c in reversed(body))) % 10) % 10)


def iban_valid(value: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers (A = 10), mod 97 must be 1."""
    v = str(value).replace(" ", "").upper()
    if not _IBAN.match(v):
        return False
    return int("".join(str(int(c, 36)) for c in v[4:] + v[:4])) % 97 == 1


def phone_region(text: pd.Series) -> tuple[str | None, float]:
    """The region whose numbers most of these values are, and that share: a value counts for a region when
    `phonenumbers` parses it, read as dialled there, to a valid number of that region's country code (so +44
    numbers count for GB whatever region they are read from, and 2015550123 for US; ties go to the earlier region)."""
    import phonenumbers

    sample = text.head(200).tolist()
    best, share = None, 0.0
    for region in PHONE_REGIONS:
        code = phonenumbers.country_code_for_region(region)
        ok = 0
        for v in sample:
            try:
                parsed = phonenumbers.parse(v, region)
            except phonenumbers.NumberParseException:
                continue
            ok += parsed.country_code == code and phonenumbers.is_valid_number(parsed)
        if ok / len(sample) > share:
            best, share = region, ok / len(sample)
        if share >= 0.99:
            break
    return best, share


def looks_like(kind: str, values: pd.Series) -> pd.Series:
    """Per value: does it have the form of this PII type (the report's format check of generated columns)."""
    text = values.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    digits = text.str.replace(r"\D", "", regex=True)
    if kind == "email":
        return text.str.match(_EMAIL)
    if kind == "phone":
        return text.str.match(_PHONE) & digits.str.len().between(7, 21)
    if kind in ("name", "first_name", "last_name"):
        return text.str.match(_PERSON)
    if kind == "address":
        return text.str.contains(r"\d") & text.str.contains(r"[A-Za-z]{2,}")
    if kind == "card_number":
        return digits.str.len().between(13, 19) & digits.map(luhn_valid)
    if kind == "iban":
        return text.map(iban_valid)
    if kind == "postcode":
        return text.str.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 \-]{1,9}")
    if kind == "birth_date":
        return pd.to_datetime(text, errors="coerce", format="mixed").notna()
    if kind in ("national_id", "account_number"):
        return text.str.match(_CODE)
    raise ValueError(f"unknown PII type {kind!r}; valid: {PII_TYPES}")
