"""What the bench and check scripts share: errors in one line as the CLI gives them, device
synchronisation before a clock is read, and timing one training epoch of several method specs."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def run_script(main: Callable[[], int], script: str) -> None:
    """sys.exit(main()), with a bad name, option or missing data reported in one line, exit 2."""
    from tailbench.errors import UserError

    try:
        sys.exit(main())
    except UserError as error:
        print(f"{Path(script).name}: error: {error}", file=sys.stderr)
        sys.exit(UserError.exit_code)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def method_context(data, device):
    """The context a run of one epoch, seed 0, gives its method parts."""
    from tailbench.methods import MethodContext

    return MethodContext(
        num_classes=data.num_classes, class_counts=data.train_counts, epochs=1, first_lr_step=0,
        device=device, seed=0, image_shape=data.image_shape, nuisance=data.nuisance,
    )


def epoch_seconds(data, recipe, device, specs: dict[str, dict[str, str]]) -> dict[str, float]:
    """Seconds of one training epoch of `recipe` for each spec (with its hyper-parameters), timed
    after a warm-up epoch, each printed as it is measured. Parts that prepare an asset (GIT's
    generator, MSR's sharing) write it to a temporary cache that is removed afterwards."""
    import torch

    from tailbench.benchmarks.runner import place_model
    from tailbench.benchmarks.trainer import train
    from tailbench.methods import ComposedMethod

    seconds = {}
    before = os.environ.get("TAILBENCH_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TAILBENCH_CACHE"] = cache
        try:
            for spec, hp in specs.items():
                method = ComposedMethod(spec, method_context(data, device), hp)
                method.prepare(data)
                model, runtime = place_model(recipe, data, method, device)
                generator = torch.Generator(device=device).manual_seed(0)
                train(model, method, data.train, recipe, generator, runtime, quiet=True)  # warm-up epoch
                history, _ = train(model, method, data.train, recipe, generator, runtime, quiet=True)
                seconds[spec] = history[0].seconds
                print(f"{spec:12s} one epoch of {len(data.train)} images: {history[0].seconds:.1f} s ({history[0].images_per_s:.0f} img/s)")
        finally:
            if before is None:
                os.environ.pop("TAILBENCH_CACHE", None)
            else:
                os.environ["TAILBENCH_CACHE"] = before
    return seconds
