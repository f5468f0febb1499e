"""Try to make tailbench lose, break or lie about a run record, the way issue 15 did, and count.

    PYTHONPATH=. python scripts/stress_records.py [--rounds 40] [--builds 24] [--full-disk] [--skip-races]

Runs, against whichever tailbench is on PYTHONPATH (so the same script measures a fix and the code
before it), and prints one line per experiment and the totals:
- races: forked processes released at the same instant `tailbench submit` one record, --rounds
  rounds with 2 and with 4 racers (same record; then different records with --replace); a round
  loses the record when the target is not afterwards a complete record that validates;
- leaderboard during submits: --builds leaderboard builds while 4 processes keep replacing the record;
- faults: a writer SIGKILLed at each fsync and rename of a record write, first write and over an
  earlier record (--force); SIGTERM during training; optionally (--full-disk, root only) a run
  into a 1 MiB tmpfs and, with the free-space pre-check off, one into a 4 KiB tmpfs that fills
  during the record write;
- bad inputs: command lines and tampered or hostile records, each of which must be refused in one
  line with exit code 2 and no traceback.
Needs no data beyond scikit-learn's bundled digits; takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

BENCHMARK = "digits-lt@epochs=1"
RUN = ["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "1", "--device", "cpu", "--quiet"]


def cli(argv: list[str]) -> tuple[int, str]:
    """(exit code, stdout + stderr) of the CLI in this process; a traceback is caught and returned."""
    from tailbench.cli import main

    buffer = io.StringIO()
    with redirect_stdout(buffer), redirect_stderr(buffer):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException:
            traceback.print_exc()
            code = 99
    return code, buffer.getvalue()


def forked(argvs: list[list[str]]) -> list[tuple[int, str]]:
    """Fork one process per command line, release them at once; their (code, output)."""
    start_read, start_write = os.pipe()
    children = []
    for argv in argvs:
        out_read, out_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(start_write), os.close(out_read)
            os.read(start_read, 1)
            code, text = cli(argv)
            os.write(out_write, json.dumps([code, text]).encode())
            os._exit(0)
        os.close(out_write)
        children.append((pid, out_read))
    os.close(start_read)
    os.write(start_write, b"x" * len(argvs))
    os.close(start_write)
    outcomes = []
    for pid, out_read in children:
        with os.fdopen(out_read, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        outcomes.append(tuple(json.loads(data)) if data else (99, "died"))
    return outcomes


def complete(target: Path) -> bool:
    from tailbench.submission.validate import validate_run

    return validate_run(target).ok


def variants(record: Path, folder: Path, count: int) -> list[Path]:
    """Valid records differing in result.json only (the wall time), for --replace races."""
    out = []
    for i in range(count):
        target = folder / f"variant-{i}" / BENCHMARK / "ce" / "seed-0"
        shutil.copytree(record, target)
        result = json.loads((target / "result.json").read_text())
        result["provenance"]["wall_seconds"] = 1000.0 + i
        (target / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        out.append(target)
    return out


def races(record: Path, work: Path, rounds: int, totals: dict) -> None:
    candidates = variants(record, work / "variants", 4)
    for racers in (2, 4):
        for replace in (False, True):
            lost = tracebacks = lying = 0
            for round_ in range(rounds):
                results = work / f"race-{racers}-{replace}-{round_}"
                sources = candidates[:racers] if replace else [record] * racers
                outcomes = forked([["submit", s, "--results", results, *(["--replace"] if replace else [])] for s in sources])
                tracebacks += sum("Traceback" in text for _, text in outcomes)
                ok = complete(results / BENCHMARK / "ce" / "seed-0")
                lost += not ok
                lying += (not ok) and any(code == 0 and ("copied" in text or "replaced" in text) for code, text in outcomes)
            print(f"race  {racers} racers{' --replace' if replace else ''}: {rounds} rounds, {tracebacks} tracebacks, "
                  f"{lost} rounds lost the record, {lying} of them after a racer reported success")
            totals["races"] += rounds
            totals["lost"] += lost
            totals["tracebacks"] += tracebacks


def leaderboard_during_submits(record: Path, work: Path, builds: int, totals: dict) -> None:
    from tailbench.leaderboard.build import render_files

    results = work / "board-results"
    candidates = variants(record, work / "board-variants", 4)
    cli(["submit", candidates[0], "--results", results])
    pid = os.fork()
    if pid == 0:
        try:
            for _ in range(10_000):
                forked([["submit", c, "--results", results, "--replace"] for c in candidates])
        finally:
            os._exit(0)
    crashes = empty = 0
    for _ in range(builds):
        try:
            files = render_files(results)
            empty += b"digits-lt" not in files["summary.csv"]
        except Exception:
            crashes += 1
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print(f"board {builds} leaderboard builds during submits: {crashes} crashed, {empty} showed no record")
    totals["races"] += 1
    totals["tracebacks"] += crashes
    totals["lost"] += empty


def _write_killed(directory: Path, step: int, earlier: bool) -> tuple[bool, bool, bool]:
    """Kill a writer at its step-th fsync or rename; (killed, the earlier record kept, a partial record visible)."""
    from tailbench.results.records import iter_runs
    from tailbench.results.store import write_run

    rows = [{"class": 0, "class_name": "a", "train_count": 3, "test_acc": 0.5}]
    if earlier:
        write_run(directory, {"benchmark": "b", "method": {"spec": "ce"}, "seed": 0, "summary": {"marker": 1}}, rows)
    pid = os.fork()
    if pid == 0:
        calls = {"n": 0}

        def counted(real):
            def call(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] == step:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)
            return call

        os.fsync, os.rename, os.replace = counted(os.fsync), counted(os.rename), counted(os.replace)
        write_run(directory, {"benchmark": "b", "method": {"spec": "ce"}, "seed": 0, "summary": {"marker": 2}}, rows)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    runs = iter_runs(directory.parents[2])
    visible_partial = directory.is_dir() and not (directory / "done").exists() and any(directory.iterdir())
    return os.WIFSIGNALED(status), (len(runs) == 1 if earlier else True), visible_partial


def faults(work: Path, totals: dict, full_disk: bool) -> None:
    injected = lost = partial = 0
    for earlier in (False, True):
        for step in range(1, 9):
            directory = work / f"kill-{earlier}-{step}" / "b" / "ce" / "seed-0"
            killed, kept, visible = _write_killed(directory, step, earlier)
            if killed:
                injected += 1
                lost += not kept
                partial += visible
    print(f"kill  {injected} writers SIGKILLed during a record write: {lost} earlier records lost, {partial} partial records visible")
    totals["faults"] += injected
    totals["lost"] += lost

    out = work / "sigterm"
    code, text = _sigterm_run(out)
    lines = [line for line in text.splitlines() if line.strip()]
    print(f"term  SIGTERM during training: exit {code}, {len(lines)} line(s): {lines[-1] if lines else '(none)'}")
    totals["faults"] += 1
    totals["tracebacks"] += "Traceback" in text

    if full_disk and os.geteuid() == 0:
        from tailbench.benchmarks import runner

        for size, precheck in (("1m", True), ("4k", False)):  # one 4 KiB page: the disk fills during the record write
            mount = work / f"disk-{size}"
            mount.mkdir()
            if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True).returncode != 0:
                continue
            real = getattr(runner, "check_writable", None)
            if not precheck and real is not None:
                runner.check_writable = lambda *args, **kwargs: None
            try:
                code, text = cli([*RUN, "--out", mount / "runs"])
                leftovers = sorted(str(p.relative_to(mount)) for p in mount.rglob("*") if p.is_file())
                last = text.strip().splitlines()[-1][:150] if text.strip() else ""
                print(f"disk  run into a {size} disk{'' if precheck else ' (pre-check off)'}: exit {code}, "
                      f"{'traceback, ' if 'Traceback' in text else ''}{last!r}, files left {leftovers}")
                totals["faults"] += 1
                totals["tracebacks"] += "Traceback" in text
            finally:
                if real is not None:
                    runner.check_writable = real
                subprocess.run(["umount", str(mount)], check=False)


SIGTERM_DRIVER = """
import os, signal, sys, time
from tailbench.benchmarks import runner
real = runner.train
def train(*args, **kwargs):  # SIGTERM arrives once training has begun, as a scheduler's would
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    return real(*args, **kwargs)
runner.train = train
from tailbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _sigterm_run(out: Path) -> tuple[int, str]:
    """A fresh process (forking one that has trained would inherit torch's thread pools)."""
    child = subprocess.run([sys.executable, "-c", SIGTERM_DRIVER, *[str(a) for a in RUN], "--out", str(out)],
                           capture_output=True, text=True, timeout=600)
    return child.returncode, child.stderr or "(killed by the signal, no message)"


def bad_inputs(record: Path, work: Path, totals: dict) -> None:
    command_lines = [
        [*RUN, "--seed", "9999999999999999999999999", "--out", work / "o1"],
        [*RUN, "--seed", "9" * 300, "--out", work / "o2"],
        [*RUN, "--out", work / "file-out"],
        [*RUN, "--out", work / "file-out" / "below"],
        ["submit", record, "--results", work / "file-out"],
        ["leaderboard", "--results", record.parents[2], "--out", work / "file-out"],
    ]
    (work / "file-out").write_text("a file")

    def tampered(name, change):
        target = work / "tampered" / name / BENCHMARK / "ce" / "seed-0"
        shutil.copytree(record, target)
        text = (target / "result.json").read_text()
        (target / "result.json").write_text(change(text, target))
        return ["submit", target, "--results", work / f"results-{name}"]

    def summary(**values):
        def change(text, target):
            result = json.loads(text)
            result["summary"].update(values)
            return json.dumps(result)
        return change

    def at(path, value):
        def change(text, target):
            result = json.loads(text)
            node = result
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            return json.dumps(result)
        return change

    def done_text(text, target):
        (target / "done").write_text("not empty")
        return text

    records = [
        tampered("lie", summary(accuracy=0.999, tail_accuracy=0.999, worst_class_accuracy=1.0, tail_ekld_rot=0.0, spearman_ekld_count_rot=1.0)),
        tampered("lie-accuracy-only", summary(accuracy=0.999)),
        tampered("lie-tail-only", summary(tail_accuracy=0.999)),
        tampered("big-provenance", at(["provenance", "machine", "node"], "x" * 10_000_000)),
        tampered("big-paper", at(["method", "parts", 0, "paper"], "p" * 10_000_000)),
        tampered("400-digits", lambda text, target: text.replace('"seed": 0', '"seed": ' + "7" * 400, 1)),
        tampered("deep", lambda text, target: "[" * 200_000 + "]" * 200_000),
        tampered("1e999", lambda text, target: text.replace('"seed": 0', '"seed": 1e999', 1)),
        tampered("done", done_text),
    ]
    refused = accepted = tracebacks = 0
    for argv in command_lines + records:
        code, text = cli(argv)
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("copied", "unchanged", "wrote"))]
        good = code == 2 and len(lines) == 1 and "Traceback" not in text
        refused += good
        accepted += code == 0
        tracebacks += "Traceback" in text
        if not good:
            print(f"      not refused in one line: {' '.join(str(a) for a in argv)[:100]} -> exit {code}: {text.strip()[-200:]!r}")
    tried = len(command_lines) + len(records)
    print(f"bad   {tried} bad inputs: {refused} refused in one line with exit 2, {accepted} accepted, {tracebacks} tracebacks")
    totals["bad"] += tried
    totals["tracebacks"] += tracebacks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--builds", type=int, default=24)
    parser.add_argument("--full-disk", action="store_true", help="also run into a 1 MiB and a 4 KiB tmpfs (root only)")
    parser.add_argument("--skip-races", action="store_true", help="only the faults and bad inputs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tailbench-stress-"))
    totals = {"races": 0, "faults": 0, "bad": 0, "lost": 0, "tracebacks": 0}
    try:
        code, text = cli([*RUN, "--out", work / "runs"])
        assert code == 0, text
        record = work / "runs" / BENCHMARK / "ce" / "seed-0"
        if not args.skip_races:
            races(record, work, args.rounds, totals)
            leaderboard_during_submits(record, work, args.builds, totals)
        faults(work, totals, args.full_disk)
        bad_inputs(record, work, totals)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"total {totals['races']} races run, {totals['faults']} faults injected, {totals['bad']} bad inputs tried, "
          f"{totals['lost']} records lost, {totals['tracebacks']} tracebacks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
