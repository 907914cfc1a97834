"""Property-based tests (hypothesis, derandomized so CI sees the same examples every time).

* The recipe parser: any YAML text, any YAML value, any near-valid recipe with one field replaced becomes a typed
  `Recipe` or a one-line `UserError` naming a field, never another exception.
* The seed profiler: any DataFrame with NaNs, mixed dtypes, unicode, infinities and nested values becomes a
  `Profile` (or a `UserError`) whose prepared frame has exactly the modelled columns, each of its kind's dtype.
"""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthforge.data.profile import MODELLED, Profile
from synthforge.errors import UserError
from synthforge.recipe import Recipe, load_recipe, parse_recipe

SETTINGS = settings(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------------------------------- recipes

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["auto", "ctgan", "gaussian_copula", "csv", "example://credit_data", "0", "-1"]),
                    st.dates(), st.binary(max_size=4))
yaml_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none()), inner, max_size=4)),
    max_leaves=12)

VALID = {"name": "t", "random_seed": 1, "seed": {"source": "seed.csv", "target": "Status"},
         "generator": {"family": "gaussian_copula", "time_budget": 10, "params": {}},
         "output": {"rows": 10}, "quality": {"gates": {"min_quality": 0.5}, "holdout_fraction": 0.2},
         "execution": {"shard_rows": 5}}
PATHS = [("name",), ("random_seed",), ("modality",), ("seed",), ("seed", "source"), ("seed", "target"),
         ("seed", "columns"), ("seed", "drop"), ("seed", "max_rows"), ("generator",), ("generator", "family"),
         ("generator", "time_budget"), ("generator", "candidates"), ("generator", "params"), ("output", "rows"),
         ("output", "conditions"), ("quality", "gates"), ("quality", "expectations"), ("quality", "max_rounds"),
         ("execution", "threads"), ("execution", "shard_rows"), ("unknown",), ("seed", "sourse")]


def _assert_clean(data) -> None:
    try:
        recipe = parse_recipe(data)
    except UserError as e:
        message = str(e)
        assert message and "\n" not in message and "Traceback" not in message
        return
    assert isinstance(recipe, Recipe)
    assert isinstance(recipe.output.rows, int) and recipe.output.rows > 0
    assert 0 < recipe.generator.time_budget <= 7 * 24 * 3600
    assert isinstance(recipe.seed.source, str)
    json.loads(recipe.model_dump_json())  # serialisable, as the manifest needs


@SETTINGS
@given(yaml_values)
def test_any_yaml_value_is_a_recipe_or_a_clean_error(data):
    _assert_clean(data)


@SETTINGS
@given(st.sampled_from(PATHS), yaml_values)
def test_a_valid_recipe_with_one_field_replaced(path, value):
    data = json.loads(json.dumps(VALID))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    _assert_clean(data)


yaml_tokens = st.sampled_from([
    "name: t\n", "seed:\n", "  source: a.csv\n", "output: {rows: ", "}", "]", "[", "- ", ": ", "\n", "  ", "'", '"',
    "!!int x", "!!float y", "!!timestamp 2020-13-45", "2001-02-30", "!!binary ###", "!!set {a}", "&a [*a]", "*b",
    "!!python/object/apply:os.system ['true']", "? [a]\n: 1\n", "|\n  text\n", ">", "%YAML 1.1\n---\n", "...\n",
    "\t", "#", "\x00", "é字", "1e400", "0x1F", ".inf", "~", "yes", "no", "generator: {family: ctgann}\n"])


@SETTINGS
@given(st.one_of(st.text(max_size=80), st.lists(yaml_tokens, max_size=12).map("".join)))
def test_any_recipe_text_is_a_recipe_or_a_clean_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipe.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_recipe(path)
        except UserError as e:
            assert str(e) and "\n" not in str(e)


def test_deep_nesting_is_a_clean_error(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_recipe(path)


# ----------------------------------------------------------------------------------------------------- profiles

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
ROWS = 25


def _column(kind: str, rng: np.random.Generator, n: int, null_share: float) -> pd.Series:
    mask = rng.random(n) < null_share
    if kind == "float":
        v = pd.Series(rng.normal(size=n))
        v[rng.random(n) < 0.05] = np.inf
    elif kind == "int":
        v = pd.Series(rng.integers(-5, 5, n)).astype(object)
    elif kind == "bool":
        v = pd.Series(rng.random(n) < 0.5, dtype=object)
    elif kind == "category":
        v = pd.Series(rng.choice(["α", "β", "γ", "日本", ""], n))
    elif kind == "unicode":
        v = pd.Series(["".join(chr(int(c)) for c in rng.integers(0x20, 0x3000, 6)) for _ in range(n)])
    elif kind == "mixed":
        v = pd.Series([int(i) if i % 3 else f"x{i}" for i in rng.integers(0, 1000, n)], dtype=object)
    elif kind == "mostly_numbers":
        v = pd.Series(rng.normal(size=n).round(3), dtype=object)
        v[0] = "unknown"
    elif kind == "dates":
        v = pd.Series(pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"))
    elif kind == "tz_dates":
        v = pd.Series([f"2021-03-0{1 + i % 9}T10:00:00+0{i % 5}:00" for i in range(n)])
    elif kind == "datetime64":
        v = pd.Series(pd.date_range("2020-01-01", periods=n, freq="h"))
    elif kind == "timedelta":
        v = pd.Series(pd.to_timedelta(rng.integers(0, 100, n), unit="s"))
    elif kind == "nested":
        v = pd.Series([[int(i)] if i % 2 else {"k": int(i)} for i in rng.integers(0, 9, n)], dtype=object)
    elif kind == "constant":
        v = pd.Series(["same"] * n)
    elif kind == "sequence":
        v = pd.Series(np.arange(n) + 1000)
    else:  # "empty"
        v = pd.Series([None] * n, dtype=object)
    if mask.any():
        if kind == "float":
            v[mask] = np.nan
        elif kind in ("datetime64", "timedelta"):
            v[mask] = pd.NaT
        else:
            v = v.astype(object)
            v[mask] = None
    return v


KINDS = ["float", "int", "bool", "category", "unicode", "mixed", "mostly_numbers", "dates", "tz_dates", "datetime64",
         "timedelta", "nested", "constant", "sequence", "empty"]


@SETTINGS
@given(st.lists(st.tuples(names, st.sampled_from(KINDS), st.sampled_from([0.0, 0.1, 0.5, 1.0])), min_size=1,
                max_size=6, unique_by=lambda t: t[0]),
       st.integers(0, 2**32 - 1), st.integers(1, ROWS))
def test_profile_of_any_frame(columns, seed, rows):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: _column(kind, rng, rows, share) for name, kind, share in columns})
    try:
        profile = Profile.from_frame(df)
    except UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert [c.name for c in profile.columns] == list(df.columns) and profile.rows == rows
    text = json.dumps(profile.model_dump(mode="json"), allow_nan=False)  # profile.json is strict JSON
    assert Profile.model_validate(json.loads(text)) == profile
    for c in profile.columns:
        assert 0.0 <= c.null_fraction <= 1.0 and 0 <= c.distinct <= rows
        assert c.dropped or c.generated or c.kind in MODELLED
        for bound in (c.minimum, c.maximum):
            assert not isinstance(bound, float) or math.isfinite(bound)
    prepared = profile.prepare(df)
    kept = [c for c in profile.columns if not c.dropped and not c.generated]
    assert list(prepared.columns) == [c.name for c in kept] and len(prepared) == rows
    for c in kept:
        s = prepared[c.name]
        if c.kind == "numerical":
            assert pd.api.types.is_numeric_dtype(s) and not np.isinf(s.to_numpy(dtype=float, na_value=np.nan)).any()
        elif c.kind == "datetime":
            assert pd.api.types.is_datetime64_dtype(s)  # naive: time zones were converted to UTC
        elif c.kind == "boolean":
            assert s.dropna().map(lambda v: isinstance(v, (bool, np.bool_))).all()
    assert all(isinstance(note, str) and "\n" not in note for note in profile.notes())


@SETTINGS
@given(st.data())
def test_profile_overrides_are_applied_or_refused(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kind = data.draw(st.sampled_from(KINDS))
    override = data.draw(st.sampled_from(["numerical", "categorical", "datetime", "boolean", "id", "text"]))
    df = pd.DataFrame({"c": _column(kind, rng, ROWS, data.draw(st.sampled_from([0.0, 0.3])))})
    try:
        profile = Profile.from_frame(df, overrides={"c": override})
    except UserError as e:
        assert str(e).startswith("seed.columns.c: ")
        return
    col = profile.columns[0]
    assert col.kind == override or col.dropped
    prepared = profile.prepare(df)
    if not col.dropped and override == "numerical":
        assert pd.api.types.is_numeric_dtype(prepared["c"])
