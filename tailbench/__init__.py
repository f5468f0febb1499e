"""tailbench: per-class accuracy and invariance benchmarks for long-tailed image classification.

The Python API (tailbench.api), loaded on first use so that the command line starts without torch:

    tailbench.list_datasets()                registered dataset names
    tailbench.list_methods()                 registered method parts and their kinds
    tailbench.load_benchmark(name, data_dir) a benchmark's frozen splits (tailbench.api.Benchmark)
    tailbench.evaluate(model, benchmark)     what a harness run computes after training

(`list_*` as in timm.list_models: `tailbench.datasets` and `tailbench.methods` are the subpackages.)
"""

__version__ = "0.1.0"
__all__ = ["list_datasets", "list_methods", "load_benchmark", "evaluate", "Benchmark", "Evaluation"]


def __getattr__(name: str):
    if name in __all__:
        from tailbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'tailbench' has no attribute {name!r}")
