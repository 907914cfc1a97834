"""The Python API: what a notebook or a pipeline calls."""

from pathlib import Path
from typing import Any

import pandas as pd

from synthforge.engine.augment import augment
from synthforge.engine.pipeline import RunResult
from synthforge.engine.pipeline import run as _run
from synthforge.engine.workspace import release_locks
from synthforge.quality.evaluate import evaluate_frames
from synthforge.quality.report_model import TabularQuality
from synthforge.recipe import Recipe, load_recipe, parse_recipe, recipe_base_dir


def run(recipe: Recipe | dict | str | Path, *, out: str | Path | None = None, overwrite: bool = False,
        resume: bool = False, private_out: str | Path | None = None, trust_remote_code: bool = False,
        **overrides: Any) -> RunResult:
    """Run a recipe (object, dict or YAML path). `overrides` are dotted keys, e.g. `**{"output.rows": 100}`.
    `private_out`: where the model and the exact suite and profile go (default `<out>.private`);
    `trust_remote_code`: let a base model folder run its own Python (never a recipe key)."""
    base_dir = None
    if isinstance(recipe, (str, Path)):
        base_dir = recipe_base_dir(recipe)
        recipe = load_recipe(recipe, **overrides)
    elif isinstance(recipe, dict) or overrides:
        recipe = parse_recipe(recipe, **overrides)
    try:
        return _run(recipe, out=out, overwrite=overwrite, resume=resume, base_dir=base_dir, private_out=private_out,
                    trust_remote_code=trust_remote_code)
    finally:
        release_locks()  # a run that failed here must not keep its .partial locked for the notebook's lifetime


def evaluate(real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame | None = None,
             target: str | None = None, random_seed: int = 0) -> TabularQuality:
    """Grade any real/synthetic pair with synthforge's metrics, reading both through one profile of the real rows
    (as `synthforge run` and `synthforge report` do)."""
    return evaluate_frames(real, synthetic, holdout=holdout, target=target, random_seed=random_seed)


__all__ = ["run", "evaluate", "augment", "Recipe", "RunResult"]
