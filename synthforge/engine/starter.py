"""`synthforge init`: a commented starter recipe from a seed file, so nobody starts from a blank page.

Vertical presets (stricter privacy for healthcare, ...) are YAML data shipped inside the package
(synthforge/recipe/presets/), not code branches; a project's own recipes/presets/ comes first.
"""

from pathlib import Path

import yaml

from synthforge.data.profile import Profile
from synthforge.data.sources import read_seed
from synthforge.errors import UserError

# What the default family reaches on ordinary tables (docs/benchmarks.md: quality .93-.98, detection .53-.82, DCR
# share .50-.55, no copies beyond the holdout's own), with room, so a first run on honest data passes; the report
# then shows how far each gate can be tightened.
# max_value_leak_excess: a column of mostly distinct values (an amount to the cent) whose synthetic values are
# training values beyond the holdout's own share (quality/value_leak.py). The default scores -.045 on the issue's
# customers table, at most .001 on ames and 0 on the other benchmark tables (docs/benchmarks.md), and up to +.05 on
# a column of about as many rows as values (dates of 500 days on 480 rows: tabular_codec.py, ROWS_PER_PIECE), where a
# small seed's holdout adds ± .045 (1 sd at 120 rows): .07 on tests/test_notebook.py's table. 0.15 keeps honest
# small tables passing; a column shuffled on its own scores .45 (spend with 54 % zeros) to 1.
DEFAULT_GATES = {"min_quality": 0.7, "max_detection_auc": 0.95, "max_exact_copies_excess": 0.01,
                 "max_dcr_share": 0.6, "max_value_leak_excess": 0.15}


def preset_dirs() -> list[Path]:
    return [Path.cwd() / "recipes" / "presets", Path(__file__).resolve().parents[1] / "recipe" / "presets"]


def load_preset(vertical: str) -> dict:
    for folder in preset_dirs():
        path = folder / f"{vertical}.yaml"
        if path.exists():
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                raise UserError(f"{path}: a preset must be a mapping")
            return data
    known = sorted({p.stem for d in preset_dirs() if d.exists() for p in d.glob("*.yaml")})
    if vertical == "general":
        return {}
    raise UserError(f"--vertical: no preset {vertical!r}; known: {', '.join(known) or 'none'}")


def guess_target(profile: Profile) -> str | None:
    # a low-cardinality categorical named like an outcome is the usual target; else the last such column
    cats = [c for c in profile.columns if not c.dropped and c.kind in ("categorical", "boolean") and c.distinct <= 20]
    named = [c for c in cats if c.name.lower() in ("target", "label", "class", "status", "outcome", "y")]
    pick = named or cats[-1:]
    return pick[0].name if pick else None


def seed_reference(seed_path: Path, recipe_path: Path) -> str:
    """The seed as the recipe will name it: relative to the recipe's folder (how recipes read paths) when the recipe
    sits beside or above the seed, so the pair can be committed and shared; absolute otherwise."""
    seed, folder = Path(seed_path).resolve(), Path(recipe_path).resolve().parent
    try:
        return seed.relative_to(folder).as_posix()
    except ValueError:
        return str(seed)


TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl")


def starter_recipe(seed_path: Path, vertical: str = "general", recipe_path: Path | None = None) -> str:
    files = sorted(p for p in Path(seed_path).iterdir() if p.suffix.lower() in TABLE_SUFFIXES) \
        if Path(seed_path).is_dir() else []
    if len(files) >= 2:
        return starter_relational(Path(seed_path), files, vertical, recipe_path)
    seed = read_seed(str(seed_path))
    profile = Profile.from_frame(seed.frame)
    target = guess_target(profile)
    preset = load_preset(vertical)
    gates = {**DEFAULT_GATES, **(preset.get("gates") or {})}
    drop = [c.name for c in profile.columns if c.dropped]
    name = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in seed_path.stem) or "my_data"
    lines = [
        f"# Starter recipe written by `synthforge init {seed_path}`; edit, then `synthforge run` this file.",
        f"# Seed: {len(seed.frame)} rows x {seed.frame.shape[1]} columns. Detected column kinds:",
        *[f"#   {c.name}: {c.kind} ({c.reason}){' -> left out: ' + c.dropped if c.dropped else ''}"
          for c in profile.columns],
        f"name: {name}",
        f"vertical: {vertical}",
        "modality: tabular          # detected from the seed",
        "random_seed: 0",
        "seed:",
        f"  source: {_yaml_str(seed_reference(seed_path, recipe_path or Path('recipe.yaml')))}   # relative to this file",
        f"  target: {target if target else 'null'}   # guessed; the column a model trained on this data predicts",
        f"  drop: {yaml.safe_dump(drop, default_flow_style=True).strip()}   # free text is not modelled; ids and "
        "personal data are generated fresh",
        "generator:",
        "  family: auto              # synthforge's autoregressive model (Apache-2.0); add SDV's in `candidates`",
        "  time_budget: 120          # CPU seconds, a cap on the whole fit",
        "  device: auto",
        "output:",
        f"  rows: {max(1000, 2 * len(seed.frame))}",
        "quality:",
        "  auto_expectations: true   # types, ranges, category sets, nulls derived from the seed",
        f"  gates:                    # defaults{' + ' + vertical + ' preset' if preset else ''}; a failed gate exits 1;",
        "                            # after the first run, tighten them toward what report.html shows",
        *[f"    {k}: {v}" for k, v in gates.items()],
    ]
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    return yaml.safe_dump(text, default_style=None).strip().removesuffix("...").strip()


def starter_relational(folder: Path, files: list[Path], vertical: str, recipe_path: Path | None) -> str:
    """A folder of tables: the keys found in the data (unique columns; columns whose values are another table's
    keys), the tree of tables synthforge models today around the largest table, the rest said in comments."""
    from synthforge.data.keys import MIN_COVERAGE, detect_links, one_tree, primary_key, second_parents

    tables = {p.stem: read_seed(str(p)).frame for p in files}
    keys = {name: primary_key(frame) for name, frame in tables.items()}
    links = detect_links(tables, keys)
    root, chosen = one_tree(tables, links)
    tree_members = [root, *[lk.child for lk in chosen]]
    sides = [lk for lk in second_parents(links, tree_members) if lk.child != root]  # the root stays a root
    chosen = chosen + sides
    members = tree_members + list(dict.fromkeys(lk.parent for lk in sides))
    preset = load_preset(vertical)
    lines = [f"# Starter recipe written by `synthforge init {folder}`; edit, then `synthforge run` this file.",
             f"# {len(tables)} tables; keys detected from the data (a key: complete and unique; a link: at least "
             f"{MIN_COVERAGE:.0%} of a column's values are another table's keys):",
             *[f"#   {name}: {len(frame):,} rows, key {keys[name] or '(none)'}" for name, frame in tables.items()],
             *[f"#   link: {lk.describe()}" for lk in links],
             "# Modelled: a tree (one root table, one parent per table) around the largest table "
             f"({max(tables, key=lambda t: len(tables[t]))}), plus the lookup tables its tables also point at.",
             *[f"#   not included: {name}" for name in tables if name not in members],
             *[f"#   not included: {lk.describe()}" for lk in links if lk not in chosen],
             f"name: {_yaml_str(''.join(ch if ch.isalnum() or ch in '_-.' else '_' for ch in folder.name) or 'my_data')}",
             f"vertical: {vertical}",
             "modality: relational",
             "random_seed: 0",
             "seed:",
             "  tables:"]
    by_child = {lk.child: lk for lk in chosen if lk not in sides}
    for name in members:
        path = next(p for p in files if p.stem == name)
        lines += [f"    {name}:", f"      source: {_yaml_str(seed_reference(path, recipe_path or Path('recipe.yaml')))}"]
        if keys[name]:
            lines.append(f"      primary_key: {_yaml_str(keys[name])}")
        if name in {k.parent for k in sides}:
            lines.append("      copy: false   # a lookup table, drawn once; true keeps its rows as they are (keys "
                         "renumbered): for reference data, not private data")
        lk = by_child.get(name)
        extra = [s for s in sides if s.child == name]
        if lk is not None:
            fks = ", ".join(f"{_yaml_str(k.column)}: {_yaml_str(k.parent + '.' + k.key)}" for k in [lk, *extra])
            lines.append(f"      foreign_keys: {{{fks}}}")
            times = [c.name for c in Profile.from_frame(tables[name]).columns if c.kind == "datetime"]
            if times:
                lines.append(f"      sequence: {{entity: {_yaml_str(lk.column)}, order_by: {_yaml_str(times[0])}}}"
                             "   # its rows are events of one entity, in this column's order")
            if min(k.coverage for k in [lk, *extra]) < 1:
                lines.append("      orphans: drop   # rows whose key is in no parent row are left out (counted)")
    lines += ["generator:", "  time_budget: 300          # CPU seconds for all tables",
              "output:", f"  rows: {len(tables[root])}   # rows of {root}; the other tables follow",
              "quality:", "  gates:", "    min_fk_resolved: 1.0", "    min_order_holds: 1.0",
              *[f"    {k}: {v}" for k, v in (preset.get("gates") or {}).items() if k in RELATIONAL_GATES]]
    return "\n".join(lines) + "\n"


RELATIONAL_GATES = ("min_quality", "max_detection_auc", "max_dcr_share", "min_children_per_parent")  # a preset's
# gates that a relational report has a metric for (the worst table's); the rest (utility, copies) are per table
