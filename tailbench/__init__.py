"""tailbench: per-class accuracy and invariance benchmarks for long-tailed image classification."""

__version__ = "0.1.0"
