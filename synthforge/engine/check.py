"""`synthforge validate`: the recipe and its seed, checked without training."""

from importlib import import_module
from pathlib import Path

from synthforge.data.profile import Profile
from synthforge.data.sources import read_seed
from synthforge.engine.modality import resolve_modality
from synthforge.engine.run import conditions_to_counts
from synthforge.families.sdv_tabular import check_params
from synthforge.quality.expectations import build_suite
from synthforge.recipe import load_recipe


def check_recipe(path: Path) -> str:
    recipe = load_recipe(path)
    base_dir = Path(path).resolve().parent
    modality = resolve_modality(recipe, base_dir)
    if modality != "tabular":
        # text and image runs know their own params, sampling and seed formats
        return import_module(f"synthforge.engine.{modality}_run").check(recipe, base_dir)
    if recipe.generator.family != "auto":
        check_params(recipe.generator.family, recipe.generator.params)
    seed = read_seed(recipe.seed.source, recipe.seed.format, Path(path).resolve().parent, recipe.seed.max_rows)
    profile = Profile.from_frame(seed.frame, overrides=recipe.seed.columns, target=recipe.seed.target,
                                 drop=recipe.seed.drop, primary_key=recipe.seed.primary_key)
    data = profile.prepare(seed.frame)
    conditions_to_counts(recipe, profile, data)
    build_suite("check", profile.metric_kinds(), data, auto=recipe.quality.auto_expectations,
                user=tuple((e.type, dict(e.kwargs)) for e in recipe.quality.expectations))
    lines = [f"ok: {path}: {len(seed.frame)} rows x {seed.frame.shape[1]} columns from {seed.path}"]
    lines += [f"  {c.name}: {c.kind}{' (left out: ' + c.dropped + ')' if c.dropped else ''}" for c in profile.columns]
    return "\n".join(lines)
