"""`synthforge validate`: the recipe and its seed, checked without training (the pipeline stopped before fitting)."""

from pathlib import Path

from synthforge.recipe import load_recipe, recipe_base_dir


def check_recipe(path: str | Path) -> str:
    recipe = load_recipe(path)  # a recipe mistake answers before pandas and the engine are imported
    from synthforge.engine.pipeline import prepare

    modality, seed = prepare(recipe, recipe_base_dir(path))
    lines = [f"ok: {path}: {modality.name}, {seed.summary} from {seed.path}"]
    return "\n".join(lines + [f"  {d}" for d in seed.details] + [f"  note: {n}" for n in seed.notes])
