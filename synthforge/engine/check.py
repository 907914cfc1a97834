"""`synthforge validate`: the recipe and its seed, checked without training."""

from importlib import import_module
from pathlib import Path

from synthforge.recipe import load_recipe


def check_recipe(path: Path) -> str:
    recipe = load_recipe(path)  # a recipe mistake answers before pandas and the engine are imported
    from synthforge.data.profile import Profile
    from synthforge.data.sources import read_seed
    from synthforge.engine.modality import resolve_modality
    from synthforge.engine.run import check_family, conditions_to_counts

    base_dir = Path(path).resolve().parent
    modality = resolve_modality(recipe, base_dir)
    if modality != "tabular":
        # text and image runs know their own params, sampling and seed formats
        return import_module(f"synthforge.engine.{modality}_run").check(recipe, base_dir)
    check_family(recipe)
    seed = read_seed(recipe.seed.source, recipe.seed.format, Path(path).resolve().parent, recipe.seed.max_rows)
    profile = Profile.from_frame(seed.frame, overrides=recipe.seed.columns, target=recipe.seed.target,
                                 drop=recipe.seed.drop, primary_key=recipe.seed.primary_key)
    data = profile.prepare(seed.frame)
    conditions_to_counts(recipe, profile, data)
    if recipe.quality.expectations:  # the user's own expectations need Great Expectations (seconds) to check;
        from synthforge.quality.expectations import build_suite  # the derived ones cannot be wrong

        build_suite("check", profile.metric_kinds(), data, auto=recipe.quality.auto_expectations,
                    user=tuple((e.type, dict(e.kwargs)) for e in recipe.quality.expectations))
    lines = [f"ok: {path}: {len(seed.frame)} rows x {seed.frame.shape[1]} columns from {seed.path}"]
    lines += [f"  {c.name}: {c.kind}{' (left out: ' + c.dropped + ')' if c.dropped else ''}" for c in profile.columns]
    return "\n".join(lines)
