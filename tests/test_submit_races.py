"""`tailbench submit` under races: forked processes released at the same instant submit one
record (the same one, or different ones with --replace), 40 rounds with 2 racers and 40 with 4;
and the leaderboard is read and built while submits swap the record. No round may lose the
record, leave a partial one, print a traceback, or leave a hidden staging folder or lock."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import time
import traceback

import pytest

from tailbench.submission.consistency import recomputed_summary
from tailbench.results.records import iter_runs
from tailbench.submission.validate import validate_run

BENCHMARK = "digits-lt@epochs=1"
ROUNDS = 40


def make_variant(record, folder, index):
    """A valid record that differs from the others in result.json and in per_class.csv alike:
    class 0's validation accuracy is index / 10 and the wall time 1000 + index."""
    target = folder / f"variant-{index}" / BENCHMARK / "ce" / "seed-0"
    shutil.copytree(record, target)
    rows = list(csv.reader(io.StringIO((target / "per_class.csv").read_text())))
    rows[1][rows[0].index("val_acc")] = repr(index / 10)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (target / "per_class.csv").write_text(buffer.getvalue())
    result = json.loads((target / "result.json").read_text())
    result["summary"].update(recomputed_summary(result, list(csv.DictReader(io.StringIO(buffer.getvalue())))))
    result["provenance"]["wall_seconds"] = 1000.0 + index
    (target / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    assert validate_run(target).ok, validate_run(target).problems
    return target


def variant_index(result, per_class_val_acc_0) -> int:
    """Which variant a record read back is, checking its two files belong together."""
    index = int(result["provenance"]["wall_seconds"] - 1000)
    assert per_class_val_acc_0 == index / 10, "result.json and per_class.csv of different records"
    return index


class Racers:
    """Forked processes that wait, blocked on a pipe, until every one of them is handed its
    command line at once; forked once and reused for every round (forking is the slow part)."""

    def __init__(self, count):
        self.children = []
        for _ in range(count):
            go_read, go_write = os.pipe()
            done_read, done_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                for _, earlier_go, earlier_done in self.children:  # else an earlier racer never sees its end of orders
                    os.close(earlier_go), os.close(earlier_done)
                os.close(go_write), os.close(done_read)
                self._serve(go_read, done_write)
            os.close(go_read), os.close(done_write)
            self.children.append((pid, go_write, done_read))

    @staticmethod
    def _serve(go, done):
        from tailbench.cli import main

        with os.fdopen(go, "rb") as orders:
            for line in orders:
                argv, log = json.loads(line)
                code = 99
                with open(log, "w") as output:
                    sys.stdout = sys.stderr = output
                    try:
                        code = main(argv)
                    except BaseException:
                        traceback.print_exc()
                    output.flush()
                os.write(done, bytes([code if isinstance(code, int) and 0 <= code < 256 else 99]))
        os._exit(0)

    def round(self, argvs, logs):
        """Release one command line per racer at the same instant; their exit codes."""
        for (_, go, _), argv, log in zip(self.children, argvs, logs):
            os.write(go, (json.dumps([argv, str(log)]) + "\n").encode())
        return [os.read(done, 1)[0] for _, _, done in self.children]

    def close(self):
        for pid, go, done in self.children:
            os.close(go)
            os.waitpid(pid, 0)
            os.close(done)


@pytest.fixture(scope="module")
def variants(digits_record, tmp_path_factory):
    folder = tmp_path_factory.mktemp("variants")
    return [make_variant(digits_record, folder, i) for i in range(4)]


@pytest.mark.parametrize("racers", [2, 4])
def test_racing_submits_never_lose_or_break_the_record(variants, tmp_path, racers):
    lost = tracebacks = 0
    racers_pool = Racers(racers)
    for round_ in range(ROUNDS):
        results = tmp_path / f"round-{round_}"
        different = round_ % 2 == 1  # odd rounds: different records with --replace; even: the same record
        sources = variants[:racers] if different else [variants[0]] * racers
        argvs = [["submit", str(source), "--results", str(results), *(["--replace"] if different else [])] for source in sources]
        logs = [tmp_path / f"log-{round_}-{i}" for i in range(racers)]
        codes = racers_pool.round(argvs, logs)
        texts = [log.read_text() for log in logs]
        tracebacks += sum("Traceback" in text for text in texts)
        target = results / BENCHMARK / "ce" / "seed-0"
        checked = validate_run(target)
        if not checked.ok:
            lost += 1
            continue
        assert codes == [0] * racers, texts
        statuses = sorted(text.split()[0] for text in texts)
        assert statuses == ["copied"] + (["replaced"] if different else ["unchanged"]) * (racers - 1), texts
        winner = [source for source in sources if (source / "result.json").read_bytes() == checked.files["result.json"]]
        assert winner and all((winner[0] / name).read_bytes() == checked.files[name] for name in ("per_class.csv", "done"))
        assert sorted(p.name for p in target.parent.iterdir()) == ["seed-0"], "a staging folder or lock was left"
    racers_pool.close()
    assert (lost, tracebacks) == (0, 0)


def test_the_leaderboard_reads_and_builds_while_submits_swap_the_record(variants, tmp_path):
    from tailbench.cli import main
    from tailbench.leaderboard.aggregate import entries
    from tailbench.leaderboard.build import build_leaderboard, per_class_csv, summary_csv

    results = tmp_path / "results"
    assert main(["submit", str(variants[0]), "--results", str(results)]) == 0
    pid = os.fork()
    if pid == 0:  # four writers, 15 replacing submits each
        code = 1
        try:
            sys.stdout = sys.stderr = open(tmp_path / "writers.log", "w")
            writers = Racers(4)
            argvs = [["submit", str(variants[i]), "--results", str(results), "--replace"] for i in range(4)]
            codes = [writers.round(argvs, [tmp_path / f"w{i}-{n}.log" for i in range(4)]) for n in range(15)]
            writers.close()
            code = 0 if all(c == [0, 0, 0, 0] for c in codes) else 1
        finally:
            os._exit(code)
    reads, seen = 0, set()
    built = False
    while True:
        runs = iter_runs(results)
        if sys.platform == "linux":  # one rename exchanges the folders: never a moment without a record
            assert len(runs) == 1
        for run in runs:
            seen.add(variant_index(run.result, float(run.per_class["val_acc"][0])))
        grouped = entries(runs)
        summary_csv(grouped), per_class_csv(grouped)
        reads += 1
        if not built and reads >= 5 and len(seen) >= 2:  # a build on a busy machine can outlast the writers: read first
            build_leaderboard(results, tmp_path / "board")
            built = True
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        time.sleep(0.005)
    assert os.waitstatus_to_exitcode(status) == 0
    assert built and reads >= 5 and len(seen) >= 2
    assert validate_run(results / BENCHMARK / "ce" / "seed-0").ok
    assert sorted(p.name for p in (results / BENCHMARK / "ce").iterdir()) == ["seed-0"]
