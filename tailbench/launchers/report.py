"""What a sweep says as its runs finish, and its closing summary (one line per failure)."""

from __future__ import annotations

from tailbench.console import console
from tailbench.launchers.job import BUSY, COMPLETE, CRASHED, FAILED, Outcome


def say(text: str) -> None:
    """One plain line on stderr, never wrapped (a failure is one line, whatever the width)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def announce(outcome: Outcome, finished: int, total: int) -> None:
    """One line for a finished run; a crash's traceback too (it is a bug, not bad input)."""
    head = f"[{finished}/{total}] {outcome.label}"
    if outcome.status == COMPLETE:
        say(f"{head}: complete in {outcome.seconds:.0f} s")
    elif outcome.status == BUSY:
        say(f"{head}: skipped, {outcome.message}")
    else:
        if outcome.detail:
            say(outcome.detail)
        say(f"{head}: failed: {outcome.message}")


def summarize(outcomes: list[Outcome], total: int, already_complete: int, seconds: float) -> int:
    """The closing lines; the exit code is 1 when any run failed, else 0 (a run that another
    process is training is reported, not counted as a failure)."""
    outcomes = sorted(outcomes, key=lambda o: o.index)
    failures = [o for o in outcomes if o.status in (FAILED, CRASHED)]
    busy = [o for o in outcomes if o.status == BUSY]
    complete = total - len(failures) - len(busy)
    note = f" ({already_complete} complete before it started)" if already_complete else ""
    say(f"tailbench sweep: {complete} of {total} runs complete in {seconds / 60:.1f} min{note}")
    for outcome in busy:
        say(f"  running elsewhere: {outcome.label}: {outcome.message}")
    for outcome in failures:
        reason = f"crashed: {outcome.message}" if outcome.status == CRASHED else outcome.message
        say(f"  failed: {outcome.label}: {reason}")
    return 1 if failures else 0
