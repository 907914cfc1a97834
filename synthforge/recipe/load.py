"""YAML → Recipe, with every error reduced to one line that names the field path and what was expected."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from synthforge.errors import UserError
from synthforge.recipe.schema import Recipe, check_paths


EXAMPLE = "example://"


def shipped_recipes() -> dict[str, Path]:
    """The recipes shipped inside the package (`synthforge/recipes/*.yaml`; in a checkout, `recipes/` links there),
    by name: what `synthforge recipes` lists and `example://NAME` runs, from a wheel as from a checkout."""
    from importlib.resources import files

    folder = Path(str(files("synthforge") / "recipes"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def recipe_path(path: str | Path) -> Path:
    """A recipe file, or `example://NAME` resolved to the shipped recipe NAME (one line naming them when unknown)."""
    text = str(path)
    if not text.startswith(EXAMPLE):
        return Path(path)
    shipped = shipped_recipes()
    name = text[len(EXAMPLE):].removesuffix(".yaml")
    if name not in shipped:
        raise UserError(f"recipe {text}: no shipped recipe {name!r}; shipped: {', '.join(shipped)}")
    return shipped[name]


def recipe_base_dir(path: str | Path) -> Path:
    """The folder a recipe's relative paths are read from: its own folder (not following links, so `recipes/` of a
    checkout keeps `../runs` beside it); for `example://NAME`, `./recipes` of where the user is, so a shipped
    recipe writes to `./runs/NAME` as it does in a checkout."""
    import os

    if str(path).startswith(EXAMPLE):
        return Path.cwd() / "recipes"
    return Path(os.path.abspath(path)).parent


def load_recipe(path: str | Path, **overrides: Any) -> Recipe:
    """Read a recipe file (or `example://NAME`). `overrides` are dotted keys (e.g. output.rows=10) applied before
    validation."""
    path = recipe_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"recipe {path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"recipe {path}: is a folder, expected a YAML file") from None
    except UnicodeDecodeError:
        raise UserError(f"recipe {path}: not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"recipe {path}: cannot read ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        why = " ".join(str(getattr(e, "problem", None) or e).split())  # one line: reader errors span several
        raise UserError(f"recipe {path}:{where} not valid YAML ({why})") from None
    except (ValueError, RecursionError) as e:  # PyYAML's constructors: `2001-02-30`, `!!int x`; absurd nesting
        raise UserError(f"recipe {path}: not valid YAML ({str(e)[:120] or type(e).__name__}); quote the value "
                        "if it is meant as text") from None
    return parse_recipe(data, source=str(path), **overrides)


def parse_recipe(data: Any, source: str = "recipe", **overrides: Any) -> Recipe:
    if isinstance(data, Recipe):
        data = data.model_dump()
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of recipe keys at the top level, got {type(data).__name__}")
    data = _apply_overrides(data, overrides)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise UserError(f"{source}: {format_validation_error(e)}") from None
    try:
        check_paths(recipe)  # names that become path segments: no `../` out of the run folder
    except ValueError as e:
        raise UserError(f"{source}: {e}") from None
    return recipe


def _apply_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    data = dict(data)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.get(key)
            node[key] = dict(child) if isinstance(child, dict) else {}
            node = node[key]
        node[leaf] = value
    return data


def format_validation_error(e: ValidationError) -> str:
    """The first error as `field.path: what is wrong`, plus how many more there are."""
    errors = e.errors()
    first = _one(errors[0])
    return first + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def _one(err: dict) -> str:
    loc = ".".join(str(p) for p in err["loc"] if p != "[key]") or "recipe"
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    if kind == "literal_error":
        expected = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{loc}: {value!r} is not one of {expected}{did_you_mean(value, expected.split(', '))}"
    if kind == "extra_forbidden":
        keys = [str(p) for p in err["loc"] if p != "[key]"]
        return f"{loc}: unknown key{did_you_mean(keys[-1], _keys_at(keys[:-1]))}"
    if kind == "missing":
        return f"{loc}: required"
    return f"{loc}: {err['msg']} (got {_short(value)})"


def did_you_mean(value: Any, choices) -> str:
    """"; did you mean 'family'?" for a near miss, else ""."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _keys_at(path: list[str]) -> list[str]:
    """The recipe keys valid under a dotted path (the fields of the pydantic model found there)."""
    from typing import get_args

    from pydantic import BaseModel

    model = Recipe
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return []
        candidates = [field.annotation, *get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
