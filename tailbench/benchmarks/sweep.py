"""Many runs in a row: every configuration is checked first, finished runs are skipped, and a
failed run does not stop the others (its one-line reason is reported at the end)."""

from __future__ import annotations

import time

from tailbench.benchmarks.progress import console
from tailbench.benchmarks.runner import RunConfig, resolve, run
from tailbench.errors import UserError


def sweep(configs: list[RunConfig]) -> int:
    for config in configs:  # every name and number, before hours of training
        resolve(config)
    failures: list[str] = []
    started = time.perf_counter()
    for index, config in enumerate(configs, 1):
        label = f"{config.dataset} / {config.method} / seed {config.seed}"
        console.rule(f"[{index}/{len(configs)}] {label}")
        try:
            run(config)
        except UserError as error:
            failures.append(f"{label}: {error}")
            console.print(f"failed: {error}")
    minutes = (time.perf_counter() - started) / 60
    console.print(f"sweep: {len(configs) - len(failures)} of {len(configs)} runs complete in {minutes:.1f} min")
    for failure in failures:
        console.print(f"  failed: {failure}")
    return 1 if failures else 0
