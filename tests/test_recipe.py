import pytest

from synthforge.errors import UserError
from synthforge.recipe import load_recipe, parse_recipe

BASE = {"name": "x", "seed": {"source": "a.csv"}}


def _err(data) -> str:
    with pytest.raises(UserError) as e:
        parse_recipe(data)
    return str(e.value)


def test_misspelled_family_names_field_and_choices():
    msg = _err({**BASE, "generator": {"family": "ctgann"}})
    assert ("generator.family: 'ctgann' is not one of auto, autoregressive, gaussian_copula, tvae, ctgan, copulagan"
            in msg)


def test_unknown_key_is_an_error():
    assert "output.colour: unknown key" in _err({**BASE, "output": {"colour": "red"}})


def test_wrong_type_and_bounds():
    assert "output.rows" in _err({**BASE, "output": {"rows": "many"}})
    assert "output.rows" in _err({**BASE, "output": {"rows": 0}})
    assert "generator.time_budget" in _err({**BASE, "generator": {"time_budget": 0}})


def test_gate_keys_are_checked():
    assert "quality.gates.min_qualty: 'min_qualty' is not one of" in _err({**BASE, "quality": {"gates": {"min_qualty": 1}}})
    # a NaN threshold would make every comparison false: a gate that could never pass (or, for max_, never fail)
    assert "quality.gates.min_quality: Input should be a finite number" in \
        _err({**BASE, "quality": {"gates": {"min_quality": float("nan")}}})


def test_missing_seed():
    assert "seed: required" in _err({"name": "x"})


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_recipe(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="expected a mapping"):
        load_recipe(lst)
    with pytest.raises(UserError, match="file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_yaml_cannot_run_code(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\nseed: {source: a.csv}\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_recipe(evil)


def test_overrides_apply_dotted_keys():
    r = parse_recipe(BASE, **{"output.rows": 7, "generator.device": "cpu"})
    assert r.output.rows == 7 and r.generator.device == "cpu"


def test_recipe_is_frozen():
    r = parse_recipe(BASE)
    with pytest.raises(Exception):
        r.output.rows = 5
