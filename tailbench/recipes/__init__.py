"""Training recipes: `recipe.py` reads the YAML files beside it."""
