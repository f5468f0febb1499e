"""How a sweep is launched: the `tailbench sweep` options that pick a launcher and size its runs,
each field one option (cli_options.option), with the launchers it applies to."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from tailbench.cli_options import Flag, flag_of, option
from tailbench.limits import positive_int
from tailbench.errors import UserError
from tailbench.launchers import LAUNCHERS


def launch_option(flag: Flag, default=None, only_for: tuple[str, ...] = LAUNCHERS):
    return option(flag, default, only_for=only_for)


@dataclass(frozen=True)
class LaunchSettings:
    launcher: str = launch_option(Flag(
        "--launcher", "local: this machine (default); ray: one Ray task per run; slurm: one job array through submitit",
        choices=LAUNCHERS), "local")
    jobs: int | None = launch_option(Flag(
        "--jobs", "local: N runs at once in worker processes; ray: N runs share each GPU (default: 1 on a CPU, 4 on a GPU)",
        type=positive_int, metavar="N"), only_for=("local", "ray"))
    cpus_per_run: int | None = launch_option(Flag(
        "--cpus-per-run", "CPU threads per run, also what each Ray or Slurm task asks for (default: local the cores / "
        "--jobs, ray and slurm 1)", type=positive_int, metavar="N"))
    ray_address: str | None = launch_option(Flag(
        "--ray-address", "Ray cluster to use (default: $RAY_ADDRESS, else a new local Ray cluster)", metavar="ADDRESS"), only_for=("ray",))
    slurm_partition: str | None = launch_option(Flag("--slurm-partition", "the Slurm partition (default: the cluster's)", metavar="NAME"),
                                                only_for=("slurm",))
    slurm_time: int | None = launch_option(Flag("--slurm-time", "time limit per array task (default 60)", type=positive_int,
                                                metavar="MINUTES"), only_for=("slurm",))
    slurm_gpus_per_task: int | None = launch_option(Flag("--slurm-gpus-per-task", "GPUs per array task (default 0)", type=positive_int,
                                                         metavar="N"), only_for=("slurm",))
    slurm_max_parallel: int | None = launch_option(Flag("--slurm-max-parallel", "array tasks running at once (default: Slurm's)",
                                                        type=positive_int, metavar="N"), only_for=("slurm",))
    slurm_folder: Path | None = launch_option(Flag("--slurm-folder", "submitit's job files and logs (default: OUT/.submitit)",
                                                   type=Path, metavar="DIR"), only_for=("slurm",))
    slurm_local: bool = launch_option(Flag("--slurm-local", "run the job array on this machine through submitit's LocalExecutor",
                                           action="store_true"), False, only_for=("slurm",))
    quiet: bool = option(default=False)  # the run options' --quiet (RunConfig), read here by name too

    def check(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise UserError(f"--launcher {self.launcher!r} is not one of {', '.join(LAUNCHERS)}")
        for item in fields(self):
            value = getattr(self, item.name)
            flag = flag_of(item)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise UserError(f"{flag.name} must be a positive integer, got {value}")
            launchers = item.metadata.get("only_for", LAUNCHERS)
            if value not in (None, False) and self.launcher not in launchers:
                raise UserError(f"{flag.name} applies to --launcher {' or '.join(launchers)}, not {self.launcher}")
