"""What a job runs: a shipped recipe (by name) or an uploaded YAML, plus overrides, confined to the tenant.

The server, not the recipe, decides every path: `seed.source` becomes the job's dataset file, the output folder is
the job's own. A recipe that names any other path (absolute, `~`, `..`, a relative file, a link) is refused with
one line before anything is stored; so is a key that would run code or reach another machine.

The dataset decides the kind of job: a table (CSV, Parquet, JSON lines) runs a table or text recipe; a zip of
images an image recipe (`seed.source` is its extracted folder); a zip of tables a relational recipe, each of the
recipe's `seed.tables` reading the dataset's file of that name (its `source` is the server's too)."""

from pathlib import Path
from typing import Any

import yaml

from synthforge.errors import UserError
from synthforge.recipe.load import EXAMPLE, parse_recipe, shipped_recipes

MAX_RECIPE_BYTES = 64 * 1024
# the knobs a job may override, as dotted prefixes; paths and execution are the server's
OVERRIDABLE = ("output.rows", "output.conditions", "random_seed", "generator.family", "generator.params",
               "generator.candidates", "generator.time_budget", "quality.", "seed.target", "seed.max_rows",
               "seed.drop", "seed.columns", "seed.primary_key", "licence")
FORBIDDEN_KEYS = ("trust_remote_code",)


# the dataset's format → the modalities a job on it may run
MODALITIES_OF = {"csv": ("tabular", "text"), "parquet": ("tabular", "text"), "jsonl": ("tabular", "text"),
                 "images": ("image",), "tables": ("relational",)}


def build(recipe: str | None, recipe_yaml: str | None, overrides: dict[str, Any], dataset_file: Path,
          max_rows: int, execution: dict | None = None, dataset_format: str = "csv") -> tuple[str, dict]:
    """(recipe name, the recipe as the job will run it, as JSON-able data), or a one-line UserError."""
    if (recipe is None) == (recipe_yaml is None):
        raise UserError("give either recipe (a shipped recipe's name, see GET /recipes) or recipe_yaml, not both")
    if recipe is not None:
        name = recipe.removeprefix(EXAMPLE).removesuffix(".yaml")
        shipped = shipped_recipes()
        if name not in shipped:
            raise UserError(f"recipe: no shipped recipe {name!r}; shipped: {', '.join(shipped)}")
        data = yaml.safe_load(shipped[name].read_text(encoding="utf-8"))
        data.get("output", {}).pop("folder", None)  # ours: relative to the package; the server chooses the folder
        data["seed"] = {k: v for k, v in data.get("seed", {}).items() if k != "source"}
        for table in (data["seed"].get("tables") or {}).values():
            if isinstance(table, dict):
                table.pop("source", None)  # example://...: the server points each table at the dataset's file
    else:
        data = _parse_yaml(recipe_yaml)
        _check_paths(data)  # refused: any path; what is left of seed.source and output.folder, the server sets
        for section, key in (("output", "folder"), ("seed", "source")):
            if isinstance(data.get(section), dict):
                data[section].pop(key, None)
    if not isinstance(data.get("seed"), dict):
        data["seed"] = {}
    tables = data["seed"].get("tables")
    if dataset_format == "tables":
        _point_tables(data["seed"], dataset_file)
    elif tables:
        raise UserError("seed.tables: a relational recipe runs on a zip of tables (one CSV, Parquet or JSON lines "
                        "file per table, named like the table); this dataset is one table")
    else:
        data["seed"]["source"] = str(dataset_file)
    for key in overrides:
        if not any(key == p or key.startswith(p if p.endswith(".") else p + ".") for p in OVERRIDABLE):
            raise UserError(f"overrides: {key!r} cannot be overridden in the service; allowed: {', '.join(OVERRIDABLE)}")
    _check_paths(overrides, "overrides")
    data.pop("execution", None)  # the server's: where shards run (local or its Ray cluster), its thread count
    data["execution"] = dict(execution or {"threads": 1})
    parsed = parse_recipe(data, source="recipe", **overrides)  # one line naming the key when something is wrong
    if parsed.output.rows > max_rows:
        raise UserError(f"output.rows: {parsed.output.rows} is over this server's cap of {max_rows}")
    from synthforge.engine.modalities import resolve

    modality = resolve(parsed)  # the dataset's files exist here: a folder is images, a text column text
    allowed = MODALITIES_OF.get(dataset_format, ("tabular", "text"))
    if modality not in allowed:
        raise UserError(f"recipe: a {modality} recipe cannot run on this dataset ({dataset_format}); it runs "
                        f"{' or '.join(allowed)} recipes")
    out = parsed.model_dump(mode="json", by_alias=True)
    out["modality"] = modality  # stated, so the job's process and the results know without looking again
    return parsed.name, out


def _point_tables(seed: dict, folder: Path) -> None:
    """Each of the recipe's tables reads the dataset's file of the same name; the recipe names no files."""
    from synthforge.service.archives import table_files

    files = table_files(folder)
    tables = seed.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise UserError(f"seed.tables: this dataset is a zip of tables ({', '.join(files)}); a relational recipe "
                        "names them under seed.tables")
    for name, spec in tables.items():
        if name not in files:
            raise UserError(f"seed.tables.{name}: this dataset has no table {name!r}; it has {', '.join(files)}")
        if not isinstance(spec, dict):
            raise UserError(f"seed.tables.{name}: expected a mapping (primary_key, foreign_keys, ...)")
        spec["source"] = str(files[name])
    seed.pop("source", None)


def _parse_yaml(text: str) -> dict:
    if len(text.encode()) > MAX_RECIPE_BYTES:
        raise UserError(f"recipe_yaml: over {MAX_RECIPE_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"recipe_yaml:{where} not valid YAML") from None
    except (ValueError, RecursionError):
        raise UserError("recipe_yaml: not valid YAML") from None
    if not isinstance(data, dict):
        raise UserError("recipe_yaml: expected a mapping of recipe keys at the top level")
    return data


def _check_paths(node: Any, where: str = "") -> None:
    """Refuse every value that names a file: the seed and the output are set by the server, and nothing else in a
    recipe may reach the file system (a shipped example, `example://NAME`, is the one name allowed)."""
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{where}.{k}" if where else str(k)
            if str(k) in FORBIDDEN_KEYS:
                raise UserError(f"{key}: not allowed in the service (no code from a recipe ever runs)")
            if str(k) == "source" and isinstance(v, str) and not v.startswith(EXAMPLE):
                raise UserError(f"{key}: {v!r} is outside this tenant's storage; a job reads only its dataset "
                                "(leave seed.source out: the server sets it)")
            _check_paths(v, key)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            _check_paths(v, f"{where}[{i}]")
    elif isinstance(node, str) and _looks_like_path(node):
        raise UserError(f"{where}: {node!r} is outside this tenant's storage; a service recipe names no paths")


def _looks_like_path(text: str) -> bool:
    if text.startswith(EXAMPLE):
        return False
    t = text.replace("\\", "/")
    return t.startswith(("/", "~")) or t == ".." or t.startswith("../") or "/../" in t or t.endswith("/..") \
        or (len(t) > 1 and t[1] == ":")  # C:\...
