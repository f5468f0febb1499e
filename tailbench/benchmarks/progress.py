"""Console output: a rich progress bar per epoch, and tables at the end of a run.

A run inside a sweep's worker process draws nothing itself: the worker sets a reporter
(`reporting_to`), and the epoch progress goes to it as small dicts that the sweep shows together.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tailbench.console import console


Reporter = Callable[[dict], None]
_reporter: Reporter | None = None


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    """Send this process's epoch progress to `reporter` instead of drawing it, for the block."""
    global _reporter
    previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        _reporter = previous


class EpochProgress:
    def __init__(self, epochs: int, steps: int, quiet: bool = False) -> None:
        self.epochs, self.steps, self.quiet = epochs, steps, quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}  {task.fields[ips]:.0f} img/s"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet or not sys.stderr.isatty() or _reporter is not None,
        )
        self.task = None
        self.reporter = _reporter

    @property
    def live(self) -> bool:
        """Whether a progress bar is on screen (reading the running sums then is worth a GPU sync)."""
        return not self.progress.disable

    def __enter__(self) -> "EpochProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.reporter is not None:
            self.reporter({"epoch": epoch, "epochs": self.epochs, "step": 0, "steps": self.steps, "loss": None, "acc": None, "ips": None})
            return
        self.task = self.progress.add_task(f"epoch {epoch + 1}/{self.epochs}", total=self.steps, loss=0.0, acc=0.0, ips=0.0)

    def update(self, step: int, loss: float, acc: float, images_per_s: float) -> None:
        if self.reporter is not None:
            self.reporter({"epoch": self.epoch, "epochs": self.epochs, "step": step, "steps": self.steps, "loss": loss, "acc": acc, "ips": images_per_s})
            return
        self.progress.update(self.task, completed=step, loss=loss, acc=acc, ips=images_per_s)
        if step == self.steps and not self.quiet and not sys.stderr.isatty():
            # No live display (a log file, CI): one line per epoch instead.
            console.print(f"epoch {self.epoch + 1}/{self.epochs}  loss {loss:.4f}  acc {acc:.3f}  {images_per_s:.0f} img/s")


def print_run_summary(title: str, per_class_rows: list[dict], summary: dict[str, object], families: tuple[str, ...]) -> None:
    table = Table(title=f"{title}: per class", show_lines=False)
    for column in ["class", "name", "train", "val acc", "test acc"] + [f"eKLD {f}" for f in families]:
        table.add_column(column, justify="right")
    for row in per_class_rows:
        cells = [str(row["class"]), str(row["class_name"]), str(row["train_count"]), f"{row['val_acc']:.3f}", f"{row['test_acc']:.3f}"]
        cells += [f"{row[f'ekld_{f}']:.4f}" for f in families]
        table.add_row(*cells)
    console.print(table)
    totals = Table(title=f"{title}: summary")
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    for key, value in summary.items():
        totals.add_row(key, "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(totals)
