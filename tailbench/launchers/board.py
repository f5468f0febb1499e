"""The progress of a sweep's running jobs, shown together: one live table row per running run on a
terminal, one line per finished epoch in a log file (nothing per epoch with --quiet)."""

from __future__ import annotations

import sys
import time

from rich.live import Live
from rich.table import Table

from tailbench.console import console
from tailbench.launchers.job import Outcome
from tailbench.launchers.report import announce, say


class Board:
    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet, self.finished = total, quiet, 0
        self.running: dict[int, tuple[str, float, dict | None]] = {}  # index -> (label, started, last event)
        self.live = Live(console=console, refresh_per_second=4, transient=True) if sys.stderr.isatty() and not quiet else None

    def __enter__(self) -> "Board":
        if self.live is not None:
            self.live.__enter__()
            self.live.update(self.render())
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def start(self, index: int, label: str) -> None:
        self.running[index] = (label, time.monotonic(), None)
        self.refresh()

    def progress(self, index: int, event: dict) -> None:
        if index not in self.running:
            return
        label, started, _ = self.running[index]
        self.running[index] = (label, started, event)
        if self.live is None and not self.quiet and event["step"] == event["steps"]:
            say(f"{label}: epoch {event['epoch'] + 1}/{event['epochs']}  loss {event['loss']:.4f}  "
                f"acc {event['acc']:.3f}  {event['ips']:.0f} img/s")
        self.refresh()

    def finish(self, outcome: Outcome) -> None:
        self.running.pop(outcome.index, None)
        self.finished += 1
        announce(outcome, self.finished, self.total)
        self.refresh()

    def refresh(self) -> None:
        if self.live is not None:
            self.live.update(self.render())

    def render(self) -> Table:
        state = f"{len(self.running)} running" if self.running or self.finished == self.total else "starting worker processes"
        table = Table(title=f"sweep: {self.finished} of {self.total} runs finished, {state}", title_justify="left")
        for column in ("run", "epoch", "step", "loss", "acc", "img/s", "time"):
            table.add_column(column, justify="left" if column == "run" else "right")
        now = time.monotonic()
        for label, started, event in sorted(self.running.values(), key=lambda row: row[1]):
            if event is None:
                cells = ["starting", "", "", "", ""]
            elif event["epoch"] + 1 == event["epochs"] and event["step"] == event["steps"]:
                cells = ["evaluating", "", "", "", ""]
            else:
                cells = [
                    f"{event['epoch'] + 1}/{event['epochs']}", f"{event['step']}/{event['steps']}",
                    "" if event["loss"] is None else f"{event['loss']:.4f}",
                    "" if event["acc"] is None else f"{event['acc']:.3f}",
                    "" if event["ips"] is None else f"{event['ips']:.0f}",
                ]
            table.add_row(label, *cells, f"{now - started:.0f} s")
        return table
