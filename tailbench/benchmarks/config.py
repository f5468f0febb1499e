"""A run's configuration and its check: every name and number, before torch or any data loads.

`resolve` is what the CLI calls first (run, sweep, rerun): a bad dataset, option, recipe, method
spec, hyper-parameter or device is reported in one line without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tailbench.cli_options import DEVICES
from tailbench.recipes.recipe import Recipe, load_recipe, with_overrides
from tailbench.datasets import get_dataset
from tailbench.datasets.base import DatasetBuilder
from tailbench.errors import UserError
from tailbench.limits import MAX_SEED
from tailbench.methods import parse_spec
from tailbench.methods.registry import changed_hparams, resolve_hparams
from tailbench.results.store import benchmark_id, method_id, path_component_problem



@dataclass
class RunConfig:
    dataset: str
    method: str
    seed: int = 0
    dataset_options: dict[str, str] = field(default_factory=dict)
    hparams: dict[str, str] = field(default_factory=dict)
    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    ekld_transforms: int | None = None
    ekld_protocol: str | None = None
    device: str = "auto"
    out: Path = Path("runs")
    data_dir: Path | None = None
    force: bool = False
    quiet: bool = False
    checkpoint_every: int | None = None  # epochs between in-run checkpoints; None: every few seconds of training, 0: never
    allow_unverified_data: bool = False
    reuse_stage1: bool = True  # a two-stage run takes its stage-1 network from the asset cache (rerun: False, both stages again)


def resolve(config: RunConfig) -> tuple[DatasetBuilder, Recipe, str, str]:
    """Check every name and number before any data is read or any file written; return the
    dataset builder, the recipe, and the benchmark and method entry the run belongs to."""
    if not 0 <= config.seed <= MAX_SEED:
        raise UserError(f"--seed must be an integer from 0 to {MAX_SEED}, got {str(config.seed)[:30]}")
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
    return builder, recipe, benchmark, entry


def check_device_choice(choice: str) -> None:
    """The device's name; whether CUDA is there is asked when the run starts (that needs torch)."""
    if choice not in DEVICES:
        raise UserError(f"--device {choice!r} is not one of {', '.join(DEVICES)}")
