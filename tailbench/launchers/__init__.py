"""The ways a sweep's runs are started, one module each: `local` (this machine, one run after
another or N worker processes), `ray` (one Ray task per run) and `slurm` (one job array through
submitit). They share the job description and the function a worker calls (`job.py`)."""

from __future__ import annotations

import importlib
from types import ModuleType

from tailbench.errors import UserError

LAUNCHERS = ("local", "ray", "slurm")


def import_extra(module: str, extra: str, launcher: str) -> ModuleType:
    """An optional dependency, or a one-line error naming the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"--launcher {launcher} needs the {module!r} package: pip install 'tailbench[{extra}]'") from None
