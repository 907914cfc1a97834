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
DEFAULT_GATES = {"min_quality": 0.7, "max_detection_auc": 0.95, "max_exact_copies_excess": 0.01,
                 "max_dcr_share": 0.6}


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


def starter_recipe(seed_path: Path, vertical: str = "general", recipe_path: Path | None = None) -> str:
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
