"""A run's configuration and its check: every name and number, before torch or any data loads.

`resolve` is what the CLI calls first (run, sweep, rerun): a bad dataset, option, recipe, method
spec, hyper-parameter or device is reported in one line without importing torch, and the
resolved run is what the sweep and the runner go on with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tailbench import cli_options, limits
from tailbench.cli_options import DEVICES, Flag, option
from tailbench.errors import UserError
from tailbench.recipes.recipe import EKLD_PROTOCOLS

if TYPE_CHECKING:
    from tailbench.datasets.base import DatasetBuilder
    from tailbench.recipes.recipe import Recipe


@dataclass
class RunConfig:
    """One run: every field is one option of `tailbench run` and `sweep` (its flag declared here,
    its dest the field's name), what a launcher hands a worker, and what `rerun` rebuilds from a
    record. dataset, method and seed are the grid's axes: `run` takes one of each, `sweep` lists."""

    dataset: str = option()
    method: str = option()
    seed: int = option(default=0)
    dataset_options: dict[str, str] = option(cli_options.DATASET_OPT, default_factory=dict)
    hparams: dict[str, str] = option(cli_options.HP, default_factory=dict)
    recipe: str | None = option(Flag("--recipe", "recipe name (default: the dataset's own); see `tailbench list recipes`"), None)
    epochs: int | None = option(Flag("--epochs", "override the recipe's epochs (the lr schedule rescales)",
                                     type=limits.int_in(1, limits.MAX_EPOCHS)), None)
    batch_size: int | None = option(Flag("--batch-size", "override the recipe's batch size", type=limits.int_in(1, limits.MAX_BATCH_SIZE)), None)
    lr: float | None = option(Flag("--lr", "override the recipe's learning rate", type=limits.positive_number), None)
    ekld_transforms: int | None = option(Flag("--ekld-transforms", "override the recipe's transforms per image for eKLD",
                                              type=limits.int_in(1, limits.MAX_EKLD_TRANSFORMS)), None)
    ekld_protocol: str | None = option(Flag(
        "--ekld-protocol", "override the recipe's eKLD protocol (clean: x is the clean test image, as the reference; "
        "drawn: x keeps its nuisance draw)", choices=EKLD_PROTOCOLS, metavar="|".join(EKLD_PROTOCOLS)), None)
    device: str = option(cli_options.DEVICE, "auto")
    out: Path = option(Flag("--out", "folder of run records: OUT/<benchmark>/<method>/seed-<seed>/", type=Path, metavar="DIR"), Path("runs"))
    data_dir: Path | None = option(cli_options.DATA_DIR, None)
    force: bool = option(Flag("--force", "run again even if the run record is complete (drops its checkpoint; the old record "
                                         "stays until the new one replaces it)", action="store_true"), False)
    quiet: bool = option(cli_options.QUIET, False)
    checkpoint_every: int | None = option(Flag(
        "--checkpoint-every", "epochs between in-run checkpoints (0: none; default: after every few seconds of training); "
        "a rerun resumes from the last", type=limits.int_in(0, limits.MAX_EPOCHS), metavar="K"), None)
    allow_unverified_data: bool = option(Flag(
        "--allow-unverified-data", "use dataset files that fail their checksum (e.g. a re-encoded copy); the record says so "
        "and `submit` refuses it", action="store_true"), False)
    reuse_stage1: bool = option(default=True)  # a two-stage run takes its stage-1 network from the asset cache (rerun: False, both stages again)


# The fields that decide what a config resolves to; the others (where it writes, how loudly, ...)
# can change without resolving it again.
RESOLVED_FROM = ("dataset", "method", "seed", "dataset_options", "hparams", "recipe", "epochs", "batch_size", "lr",
                 "ekld_transforms", "ekld_protocol", "device")


@dataclass(frozen=True)
class Resolution:
    builder: DatasetBuilder
    recipe: Recipe
    benchmark: str  # the benchmark id the run belongs to (e.g. fmnist-bg-lt@fmnist-cpu)
    entry: str  # the method entry: the spec plus @part.key=value for changed hyper-parameters


class ResolvedRun:
    """A checked RunConfig with what it resolves to, resolved once per process and passed on (the
    CLI checks it, the sweep plans with it, the runner runs it). Pickled for a worker process it
    travels as its config alone and is resolved again there, on first use, after the worker has
    loaded the method files: dataset builders are classes made at import and do not pickle."""

    def __init__(self, config: RunConfig, resolution: Resolution | None = None) -> None:
        self.config = config
        self._resolution = resolution

    def __getstate__(self) -> dict:
        return {"config": self.config, "_resolution": None}

    @property
    def resolution(self) -> Resolution:
        if self._resolution is None:
            self._resolution = _resolve(self.config)
        return self._resolution

    @property
    def builder(self) -> DatasetBuilder:
        return self.resolution.builder

    @property
    def recipe(self) -> Recipe:
        return self.resolution.recipe

    @property
    def benchmark(self) -> str:
        return self.resolution.benchmark

    @property
    def entry(self) -> str:
        return self.resolution.entry

    @property
    def directory(self) -> Path:
        from tailbench.results.store import run_dir

        return run_dir(self.config.out, self.benchmark, self.entry, self.config.seed)

    @property
    def label(self) -> str:
        return f"{self.config.dataset} / {self.config.method} / seed {self.config.seed}"

    def with_config(self, **changes) -> ResolvedRun:
        """The same run with some config fields changed; resolved again only if they decide it."""
        keeps = not any(name in RESOLVED_FROM for name in changes)
        return ResolvedRun(replace(self.config, **changes), self._resolution if keeps else None)


def resolve(config: RunConfig | ResolvedRun) -> ResolvedRun:
    """Check every name and number before any data is read or any file written: the dataset
    builder, the recipe, and the benchmark and method entry the run belongs to."""
    if isinstance(config, ResolvedRun):
        return config
    return ResolvedRun(config, _resolve(config))


def _resolve(config: RunConfig) -> Resolution:
    # Imported here: every command's parser is made from RunConfig, and `--help` needs no datasets.
    from tailbench.datasets import get_dataset
    from tailbench.methods import parse_spec
    from tailbench.methods.registry import changed_hparams, resolve_hparams
    from tailbench.recipes.recipe import load_recipe, with_overrides
    from tailbench.results.store import benchmark_id, method_id, path_component_problem

    if not 0 <= config.seed <= limits.MAX_SEED:
        raise UserError(f"--seed must be an integer from 0 to {limits.MAX_SEED}, got {str(config.seed)[:30]}")
    check_device_choice(config.device)
    builder = get_dataset(config.dataset, config.dataset_options)
    recipe = with_overrides(
        load_recipe(config.recipe or builder.recipe),
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, ekld_transforms=config.ekld_transforms,
        ekld_protocol=config.ekld_protocol,
    )
    parts = parse_spec(config.method)
    changed = changed_hparams(parts, resolve_hparams(parts, config.hparams))
    benchmark = benchmark_id(builder.dataset_id, builder.recipe, recipe.name, recipe.overrides)
    entry = method_id(config.method, changed)
    bad = path_component_problem(entry)
    if bad:
        raise UserError(f"the run's method entry {bad}; choose --hp values without '/', '\\' or NUL, and a shorter spec")
    return Resolution(builder, recipe, benchmark, entry)


def check_device_choice(choice: str) -> None:
    """The device's name; whether CUDA is there is asked when the run starts (that needs torch)."""
    if choice not in DEVICES:
        raise UserError(f"--device {choice!r} is not one of {', '.join(DEVICES)}")
