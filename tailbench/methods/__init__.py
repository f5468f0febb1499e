"""Method registry. Importing this package registers every built-in method part (without torch)."""

from tailbench.methods import losses  # noqa: F401  (registration side effects)
from tailbench.methods import rules  # noqa: F401
from tailbench.methods import augerino, oracle  # noqa: F401
from tailbench.methods import git, msr  # noqa: F401
from tailbench.methods import mixing  # noqa: F401
from tailbench.methods import posthoc  # noqa: F401
from tailbench.methods import decoupled, sade, weight_balancing  # noqa: F401
from tailbench.methods.base import Batch, MethodContext, MethodPart, StepState
from tailbench.methods.compose import ComposedMethod
from tailbench.methods.registry import load_method_file, method_parts, parse_spec, part_source, register_method

__all__ = [
    "Batch", "ComposedMethod", "MethodContext", "MethodPart", "StepState",
    "load_method_file", "method_parts", "parse_spec", "part_source", "register_method",
]
