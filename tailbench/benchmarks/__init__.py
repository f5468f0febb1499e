"""The harness: recipes, training, evaluation and invariance metrics."""
