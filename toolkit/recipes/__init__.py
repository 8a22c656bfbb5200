"""Recipes: the YAML schema and loader."""
from .schema import Recipe, RecipeError, load_recipe

__all__ = ["Recipe", "RecipeError", "load_recipe"]
