"""Recipes: the typed, frozen description of one synthforge run."""

from synthforge.recipe.schema import Recipe
from synthforge.recipe.load import load_recipe, parse_recipe, recipe_base_dir, shipped_recipes

__all__ = ["Recipe", "load_recipe", "parse_recipe", "recipe_base_dir", "shipped_recipes"]
