"""Identifiers and personal data, whatever their dtype: recognised from headers (several languages) and value shapes,
generated in the seed's format, never copied; the saved rules hold nothing a dictionary of seed values inverts."""

import hashlib
import hmac
import re

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from synthforge.data.pii import classify, detect_pii, iban_valid, luhn_digit, luhn_valid
from synthforge.data.profile import Profile
from synthforge.data.sources import read_seed
from synthforge.families.identifiers import GENERATED_FILE, GeneratedColumns


def _phones(n, rng, region="US"):
    out = []
    while len(out) < n:
        v = int(rng.integers(2_000_000_000, 9_999_999_999))
        if phonenumbers.is_valid_number(phonenumbers.parse(str(v), region)):
            out.append(v)
    return out


def _cards(n, rng):
    return [int(b + luhn_digit(b)) for b in ("5" + "".join(map(str, rng.integers(0, 10, 14))) for _ in range(n))]


def _ibans(n, rng):
    out = []
    for _ in range(n):
        bban = "".join(map(str, rng.integers(0, 10, 20)))
        check = 98 - int("".join(str(int(c, 36)) for c in bban + "ES00")) % 97
        out.append(f"ES{check:02d}{bban}")
    return out


def _names(n, seed, locale="en_US"):
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed)
    return [fake.name() for _ in range(n)]


RNG = np.random.default_rng(11)


@pytest.mark.parametrize("header, values, kind", [
    ("Telefon", _phones(60, RNG), "phone"),  # German header, integer dtype
    ("téléphone", [f"{p}" for p in _phones(60, RNG)], "phone"),
    ("telefono_movil", _phones(60, RNG), "phone"),
    ("tarjeta", _cards(60, RNG), "card_number"),  # Spanish header, 16-digit integers
    ("x7", _cards(60, RNG), "card_number"),  # no header: Luhn-valid 16 digits
    ("ref", _ibans(60, RNG), "iban"),  # no header: IBAN check digits
    ("nombre", _names(60, 1, "es_ES"), "name"),
    ("holder", _names(60, 2), "name"),
    ("col_b", _names(60, 3), "name"),  # unknown header: first words are known first names
    ("fake_first_name", ["xavor", "blentin", "quorla", "mivet"] * 15, "first_name"),  # made up, lower case
    ("fake_last_name", ["drumwell", "okasta", "penrithe", "zolb"] * 15, "last_name"),
    ("plz", [f"{z:05d}" for z in RNG.integers(1000, 99999, 60)], "postcode"),
    ("fecha_nacimiento", pd.date_range("1950-01-01", periods=60, freq="173D").strftime("%d/%m/%Y").tolist(),
     "birth_date"),
    ("ssn", [f"{a:03d}-{b:02d}-{c:04d}" for a, b, c in zip(RNG.integers(100, 899, 60), RNG.integers(10, 99, 60),
                                                            RNG.integers(1000, 9999, 60))], "national_id"),
    # not personal data
    ("plan", ["Gold", "Silver", "Bronze"] * 20, None),
    ("spend", list(np.round(RNG.gamma(2, 40, 60), 2)), None),
    ("age", list(RNG.integers(18, 90, 60)), None),
    ("cp", list(RNG.integers(0, 4, 60)), None),  # chest pain type, not a postcode
    ("account_length", list(RNG.integers(1, 240, 60)), None),
    ("product_name", ["Widget Pro", "Gadget Max", "Thing One"] * 20, None),
    ("amount_cents", list(RNG.integers(10**9, 10**10, 60)), None),  # 10 digits, but few valid phones
])
def test_headers_in_several_languages_and_value_shapes(header, values, kind):
    assert detect_pii(header, pd.Series(values)) == kind


def test_check_digit_helpers_are_right():
    assert luhn_valid("4539578763621486") and not luhn_valid("4539578763621487")
    assert luhn_valid("7992739871" + luhn_digit("7992739871"))
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB83WEST12345698765432")


def test_reasons_name_the_evidence():
    kind, why = classify("phone", pd.Series(_phones(60, np.random.default_rng(0))))
    assert kind == "phone" and "header 'phone'" in why and "valid US numbers" in why
    kind, why = classify("x7", pd.Series(_cards(60, np.random.default_rng(1))))
    assert kind == "card_number" and "Luhn" in why


def test_repeating_integer_ids_and_other_languages_in_a_profile():
    rng = np.random.default_rng(4)
    subjects = np.repeat(np.arange(5000, 5100), 6)  # 100 subjects, 6 visits each
    df = pd.DataFrame({"subject_id": subjects, "fake_first_name": rng.choice(["xavor", "blentin", "quorla"], 600),
                       "telefono": _phones(600, rng), "visita": rng.integers(1, 7, 600),
                       "presion": np.round(rng.normal(120, 15, 600), 1)})
    profile = Profile.from_frame(df)
    col = {c.name: c for c in profile.columns}
    assert (col["subject_id"].kind, col["subject_id"].generated) == ("id", "id")
    assert "header 'subject_id'" in col["subject_id"].reason and "repeated 6.0 times" in col["subject_id"].reason
    assert col["fake_first_name"].generated == "first_name" and col["telefono"].generated == "phone"
    assert profile.metric_kinds() == {"visita": "categorical", "presion": "numerical"}
    out = GeneratedColumns.fit(df, profile, seed=0).fill(df[["visita", "presion"]].head(60), start=0, seed=1)
    assert out["subject_id"].nunique() == 10 and not out["subject_id"].isin(subjects).any()  # repeats 6 times
    assert out["fake_first_name"].str.fullmatch(r"[a-z]+").all()  # lower case, like the seed
    assert out["telefono"].dtype.kind == "i"


def test_zip_codes_with_leading_zeros_stay_text(tmp_path):
    path = tmp_path / "z.csv"
    zips = [f"{z:05d}" for z in np.random.default_rng(2).integers(500, 99999, 80)]
    path.write_text("zip,code,n\n" + "".join(f"{z},{z},{i}\n" for i, z in enumerate(zips)))
    frame = read_seed(str(path)).frame
    assert frame["zip"].tolist() == zips and frame["code"].tolist() == zips and frame["n"].dtype.kind == "i"
    col = {c.name: c for c in Profile.from_frame(frame).columns}
    assert col["zip"].generated == "postcode"
    assert col["code"].kind == "id" and "leading zeros" in col["code"].reason  # no header: a code, not a number


def test_generated_cards_phones_zips_dates_names_have_the_seed_format_and_are_new():
    rng = np.random.default_rng(9)
    seed = pd.DataFrame({"phone": _phones(400, rng), "card_number": _cards(400, rng), "iban": _ibans(400, rng),
                         "zip": [f"{z:05d}" for z in rng.integers(500, 99999, 400)],
                         "dob": pd.date_range("1940-01-01", periods=400, freq="47D").strftime("%m/%d/%Y"),
                         "holder": _names(400, 5), "x": rng.normal(size=400)})
    profile = Profile.from_frame(seed)
    gen = GeneratedColumns.fit(seed, profile, seed=0)
    out = gen.fill(seed[["x"]], start=0, seed=1)
    for c in ("phone", "card_number", "iban", "zip", "dob", "holder"):
        assert not out[c].isin(seed[c]).any(), c
    assert out["phone"].dtype.kind == "i" and out["card_number"].dtype.kind == "i"
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(str(p), "US")) for p in out["phone"])
    cards = out["card_number"].astype(str)
    assert cards.str.len().eq(16).all() and cards.map(luhn_valid).all() and cards.str[0].eq("5").all()
    assert out["iban"].map(iban_valid).all() and out["iban"].str.startswith("ES").all()
    assert out["zip"].str.fullmatch(r"\d{5}").all()
    dates = pd.to_datetime(out["dob"], format="%m/%d/%Y")
    # the seed spans 1940-1991
    assert dates.min() >= pd.Timestamp("1939-12-01") and dates.max() <= pd.Timestamp("1991-06-30")
    assert out["holder"].str.fullmatch(r"([A-Z][\w'.-]* ?)+").all()  # capitalised like the seed


def test_saved_rules_cannot_be_inverted_by_a_dictionary_of_seed_values(tmp_path):
    rng = np.random.default_rng(3)
    seed = pd.DataFrame({"customer_id": np.arange(1, 301), "phone": _phones(300, rng),
                         "holder": _names(300, 8), "x": rng.normal(size=300)})
    gen = GeneratedColumns.fit(seed, Profile.from_frame(seed), seed=3)
    gen.save(tmp_path / GENERATED_FILE)
    text = (tmp_path / GENERATED_FILE).read_text()
    assert "digest" not in text and "salt" not in text
    tokens = set(re.findall(r"[0-9a-f]{16,}", text))  # anything that could be a digest, salt or key
    dictionary = [str(v) for c in ("phone", "holder") for v in seed[c]]
    for v in dictionary:
        assert v not in text and v.lower() not in text.lower()
        for salt in tokens | {hashlib.sha256(b"synthforge-3").hexdigest()[:16]}:  # the old scheme's salt
            assert hashlib.sha256(f"{salt}:{v}".encode()).hexdigest() not in text
            assert hmac.new(salt.encode(), v.encode(), hashlib.sha256).hexdigest() not in text
        assert hashlib.sha256(v.encode()).hexdigest() not in text
    # the numbering does not disclose the seed's size: it starts at a random offset, not at 301
    assert gen.rules[0].next != 301 and 1000 <= gen.rules[0].next < 10000
    # a loaded model holds no digests until guarded with the seed: then it still never writes a seed value
    loaded = GeneratedColumns.load(tmp_path / GENERATED_FILE).guard(seed)
    assert not loaded.fill(seed[["x"]], start=0, seed=2)["phone"].isin(seed["phone"]).any()


def _fitted_phones(locale: str, column: str):
    """200 of Faker's phone numbers for `locale` under `column` (the seed), the fitted columns, 60 generated values."""
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(1)
    seed = pd.DataFrame({column: [fake.phone_number() for _ in range(200)], "x": np.arange(200) % 7})
    gen = GeneratedColumns.fit(seed, Profile.from_frame(seed), seed=0)
    return seed, gen, gen.fill(seed[["x"]].head(60), start=0, seed=1)[column]


def test_phones_of_another_region_keep_its_country_code_and_validity():
    seed, gen, out = _fitted_phones("fr_FR", "téléphone")
    assert gen.rules[0].region == "FR" and not out.isin(seed["téléphone"]).any()
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(v, "FR")) for v in out)
    assert out.str.startswith("+33 ").mean() > 0.3  # the seed writes most of them internationally
    # made-up numbers (Faker's en_US: random area codes, extensions) are no region's: random digits, seed layouts
    seed, gen, out = _fitted_phones("en_US", "phone")
    assert gen.rules[0].region == "" and not out.isin(seed["phone"]).any()
    assert out.str.replace(r"\d", "9", regex=True).isin(seed["phone"].str.replace(r"\d", "9", regex=True)).all()
