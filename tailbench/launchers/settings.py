"""How a sweep is launched: the `tailbench sweep` options that pick a launcher and size its runs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from tailbench.errors import UserError
from tailbench.launchers import LAUNCHERS

# The options each launcher alone reads (None or False: not given), as the command line spells them.
ONLY_FOR = {
    "jobs": ("--jobs", ("local", "ray")),
    "ray_address": ("--ray-address", ("ray",)),
    "slurm_partition": ("--slurm-partition", ("slurm",)),
    "slurm_time": ("--slurm-time", ("slurm",)),
    "slurm_gpus_per_task": ("--slurm-gpus-per-task", ("slurm",)),
    "slurm_max_parallel": ("--slurm-max-parallel", ("slurm",)),
    "slurm_folder": ("--slurm-folder", ("slurm",)),
    "slurm_local": ("--slurm-local", ("slurm",)),
}


@dataclass(frozen=True)
class LaunchSettings:
    launcher: str = "local"
    jobs: int | None = None  # local: runs at once on this machine; ray: runs sharing one GPU
    cpus_per_run: int | None = None  # torch threads per run, and the CPUs each Ray task or Slurm task asks for
    ray_address: str | None = None  # None: RAY_ADDRESS, else a new local Ray cluster
    slurm_partition: str | None = None
    slurm_time: int | None = None  # minutes per array task
    slurm_gpus_per_task: int | None = None
    slurm_max_parallel: int | None = None  # array tasks running at once
    slurm_folder: Path | None = None  # submitit's pickles and logs (default: OUT/.submitit)
    slurm_local: bool = False  # the job array through submitit's LocalExecutor on this machine
    quiet: bool = False

    def check(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise UserError(f"--launcher {self.launcher!r} is not one of {', '.join(LAUNCHERS)}")
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise UserError(f"--{item.name.replace('_', '-')} must be a positive integer, got {value}")
            if item.name in ONLY_FOR and value not in (None, False):
                flag, launchers = ONLY_FOR[item.name]
                if self.launcher not in launchers:
                    raise UserError(f"{flag} applies to --launcher {' or '.join(launchers)}, not {self.launcher}")
