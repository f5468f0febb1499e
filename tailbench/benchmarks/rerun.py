"""`tailbench rerun DATASET METHOD [--seed S] [--results DIR] [--tolerance X]`.

Rebuilds a leaderboard entry's run from the config its record stores (dataset name and options,
recipe name and overrides, method spec and hyper-parameters, seed, device type), runs it into a
temporary folder, and prints the stored and the new summary numbers side by side.

Agreement, per summary number: within an explicit --tolerance if given; else exactly equal when
the rerun runs the record's code (the same package digest) on the same kind of device (the CPU, or
the same GPU model) and the record was deterministic (the harness is, on every device, since
provenance.runtime); else within twice the sample standard deviation of that number over the
entry's seeds (two seeds or more); else, for an entry with one seed, an error asking for
--tolerance. Exit code 1 when any number disagrees.

This module is imported when the CLI starts: keep torch out of its top-level imports.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tailbench import cli_options
from tailbench.benchmarks.provenance import machine, same_cpu_kind
from tailbench.recipes.recipe import RECIPE_OVERRIDES
from tailbench.errors import UserError
from tailbench.results.store import PER_IMAGE
from tailbench.storage.folders import require_folder

if TYPE_CHECKING:
    from tailbench.results.record import RunRecord
    from tailbench.results.records import StoredRun



def add_parser(subparsers) -> None:
    p = subparsers.add_parser("rerun", help="rerun a results entry from its stored config and compare the numbers")
    p.add_argument("benchmark", metavar="DATASET", help="the benchmark id, as in the run folder (e.g. digits-lt@epochs=1)")
    p.add_argument("method", help="the entry, as in the run folder: the method spec, plus @part.key=value for changed hyper-parameters")
    p.add_argument("--seed", type=int, help="which of the entry's seeds to rerun (default: its smallest)")
    cli_options.results(p)
    p.add_argument("--tolerance", type=float, help="absolute tolerance for every summary number (default: 2 x the std over the entry's seeds)")
    cli_options.device(p, default=None, what="run on this device instead of the record's device type")
    cli_options.data_dir(p)
    cli_options.method_file(p)
    p.add_argument("--allow-changed-code", action="store_true", help="rerun even if a part's code differs from the code the record ran")
    p.add_argument("--checkpoint", type=Path, metavar="FILE", help="for a model trained outside tailbench: its checkpoint, to re-evaluate it")
    p.set_defaults(func=cmd_rerun)


def config_from_record(record: RunRecord, out: Path, device: str | None = None, data_dir: Path | None = None):
    """The RunConfig that reproduces a stored run (values keep their stored JSON types)."""
    from tailbench.benchmarks.config import RunConfig
    from tailbench.methods import method_parts

    recipe = record.recipe
    overrides = dict(recipe.overrides)
    unknown = sorted(set(overrides) - set(RECIPE_OVERRIDES))
    if unknown:
        raise UserError(f"the record's recipe override {unknown[0]!r} is not one `tailbench run` accepts; it cannot be rerun")
    missing = [part.name for part in record.method.parts if part.name not in method_parts()]
    if missing:
        raise UserError(
            f"method part {missing[0]!r} of {record.method.spec!r} is not registered here; "
            "pass the submitter's file with --method-file FILE.py (or install their package)"
        )
    return RunConfig(
        dataset=record.dataset.name,
        method=record.method.spec,
        seed=record.seed,
        dataset_options=dict(record.dataset.options),
        hparams={f"{part}.{key}": value for part, values in record.method.hparams.items() for key, value in values.items()},
        recipe=recipe.name,
        epochs=overrides.get("epochs"),
        batch_size=overrides.get("batch_size"),
        lr=overrides.get("lr"),
        ekld_transforms=overrides.get("ekld_transforms"),
        ekld_protocol=overrides.get("ekld_protocol"),
        device=device or record.provenance.device_type,
        out=out,
        data_dir=data_dir,
        force=True,
        quiet=True,
        reuse_stage1=False,  # both stages again: the cached stage-1 network is what is being checked
    )


def changed_code(record: RunRecord) -> list[str]:
    """One sentence per part whose code here is not the code the record ran (parts of a
    version-1 record, which did not record their code, are not compared)."""
    from tailbench.methods import method_parts, part_source

    registered = method_parts()
    changes = []
    for i, part in enumerate(record.method.parts):
        if part.origin is None or part.name not in registered:
            continue
        here = part_source(registered[part.name])
        recorded = part.code.sha256 if part.code else None
        if here.sha256 == recorded and (here.origin == "builtin") == (part.origin == "builtin"):
            continue
        was = f"{part.code.file} (sha256 {part.code.sha256[:12]})" if part.code else "tailbench's built-in code"
        now = f"{here.file} (sha256 {here.sha256[:12]})" if here.sha256 else "tailbench's built-in code"
        changes.append(f"method part {part.name!r} ran from {was}, but here comes from {now}; the record holds the code it "
                       f"ran in method.parts[{i}].code")
    return changes


def entry_runs(results: Path, benchmark: str, method: str) -> list[StoredRun]:
    from tailbench.results.records import iter_runs

    require_folder(results, f"--results {results}", "point --results at a folder of run records")
    runs = [r for r in iter_runs(results / benchmark / method) if r.benchmark == benchmark and r.method == method] if (results / benchmark / method).is_dir() else []
    if not runs:
        known = sorted({f"{r.benchmark} {r.method}" for r in iter_runs(results)})
        hint = f"; entries: {', '.join(known[:12])}{' ...' if len(known) > 12 else ''}" if known else "; it holds no complete run records"
        raise UserError(f"no complete run records for {benchmark} {method} under {results}{hint}")
    return sorted(runs, key=lambda r: r.seed)


@dataclass
class Row:
    metric: str
    stored: float | None
    new: float | None
    tolerance: float

    @property
    def difference(self) -> float | None:
        if self.stored is None or self.new is None:
            return None
        return self.new - self.stored

    @property
    def agrees(self) -> bool:
        if self.stored is None or self.new is None:
            return self.stored is None and self.new is None
        if self.tolerance == 0:
            return self.new == self.stored
        return abs(self.new - self.stored) <= self.tolerance


def _sample_std(values: list[float]) -> float:
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def exact_rerun(stored: dict, rerun_kind: str) -> str | None:
    """Why a rerun on `rerun_kind` must reproduce the record bit for bit, or None when it need not."""
    from tailbench.benchmarks.provenance import code_digest
    from tailbench.devices import device_kind

    provenance = stored["provenance"]
    kind = device_kind(provenance["device_type"], provenance.get("device", provenance["device_type"]))
    deterministic = provenance.get("runtime", {}).get("deterministic", provenance["device_type"] == "cpu")
    if kind != rerun_kind or not deterministic:
        return None
    if provenance.get("code_sha256") == code_digest():
        return f"exact match (the record's code, on {kind} as the record)"
    return None


def tolerances(runs: list[StoredRun], keys: list[str], explicit: float | None, stored: dict, rerun_kind: str) -> tuple[dict[str, float], str]:
    """Per summary key, the allowed absolute difference, and a sentence saying where it came from."""
    if explicit is not None:
        if not explicit >= 0:
            raise UserError(f"--tolerance must be a non-negative number, got {explicit}")
        return {k: explicit for k in keys}, f"explicit tolerance {explicit:g}"
    exact = exact_rerun(stored, rerun_kind)
    if exact is not None:
        return {k: 0.0 for k in keys}, exact
    if len(runs) >= 2:
        out = {}
        for key in keys:
            values = [float(r.summary[key]) for r in runs if r.summary.get(key) is not None]
            out[key] = 2 * _sample_std(values) if len(values) >= 2 else 0.0
        return out, f"2 x the std over the entry's {len(runs)} seeds"
    if stored["provenance"]["device_type"] == "cpu" and rerun_kind == "cpu":
        return {k: 0.0 for k in keys}, "exact match (one seed, CPU record rerun on the CPU)"
    where = stored["provenance"].get("device", stored["provenance"]["device_type"])
    raise UserError(
        f"the entry has one seed and the record ran on {where} (other code or another kind of device "
        f"than this rerun on {rerun_kind}): there is no seed spread to derive a tolerance from; pass --tolerance X"
    )


def compare_summaries(stored: dict, new: dict, tolerance: dict[str, float]) -> list[Row]:
    keys = list(stored) + [k for k in new if k not in stored]
    return [Row(k, stored.get(k), new.get(k), tolerance.get(k, 0.0)) for k in keys]


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def print_comparison(title: str, rows: list[Row], how: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("metric", "stored", "rerun", "difference", "tolerance", "agree", title=title)
    for row in rows:
        diff = row.difference
        table.add_row(
            row.metric, _fmt(row.stored), _fmt(row.new), "—" if diff is None else f"{diff:+.3g}",
            "exact" if row.tolerance == 0 else f"{row.tolerance:.3g}", "yes" if row.agrees else "[bold red]NO[/]",
        )
    Console(width=110).print(table)
    print(f"tolerance: {how}")


def cpu_kind_note(recorded: dict[str, str]) -> str:
    """Whether this CPU can be expected to reproduce a CPU record bit for bit: its kernels follow
    the vector instructions on offer."""
    here = machine()
    same = same_cpu_kind(recorded, here)
    if same is None:
        return ("note: the record does not name its CPU's vector instructions (made before records did); "
                "on a CPU with other ones the float sums, and so the numbers, can differ")
    if same:
        return f"this CPU offers the record's vector instructions ({recorded.get('cpu', 'its CPU')}): an exact match is expected"
    missing = sorted(set(recorded["cpu_vector_isa"].split()) - set(here["cpu_vector_isa"].split()))
    extra = sorted(set(here["cpu_vector_isa"].split()) - set(recorded["cpu_vector_isa"].split()))
    return ("note: this CPU's vector instructions differ from the record's "
            f"(lacks: {' '.join(missing) or 'none'}; adds: {' '.join(extra) or 'none'}), so the numbers may differ "
            "within float noise; rerun on a CPU of the record's kind for an exact check")


def chosen_run(runs: list[StoredRun], benchmark: str, method: str, seed: int | None) -> StoredRun:
    """The entry's run of that seed (default: its smallest seed)."""
    if seed is None:
        return runs[0]
    matching = [r for r in runs if r.seed == seed]
    if not matching:
        raise UserError(f"{benchmark} {method} has no seed {seed}; its seeds: {', '.join(str(r.seed) for r in runs)}")
    return matching[0]


def rerun(results: Path, benchmark: str, method: str, seed: int | None, tolerance: float | None,
          device: str | None = None, data_dir: Path | None = None, allow_changed_code: bool = False) -> bool:
    runs = entry_runs(results, benchmark, method)
    record = chosen_run(runs, benchmark, method, seed)
    if record.record.outside is not None:
        raise UserError(f"{record.record.describe()} was trained outside tailbench, so its training cannot be rerun; "
                        "re-evaluate it with `tailbench rerun ... --checkpoint FILE`")
    changes = changed_code(record.record)
    if changes and not allow_changed_code:
        raise UserError(f"{changes[0]}; pass that code with --method-file, or --allow-changed-code to rerun with this code anyway")
    for change in changes:
        print(f"tailbench rerun: note: {change}; rerunning with this code (--allow-changed-code)")
    from tailbench.benchmarks.config import resolve
    from tailbench.results.records import read_run

    with tempfile.TemporaryDirectory(prefix="tailbench-rerun-") as folder:
        resolved = resolve(config_from_record(record.record, Path(folder), device, data_dir))  # before torch loads
        from tailbench.benchmarks.runner import run
        from tailbench.devices import device_kind, device_name, recorded_cpu_threads, resolve_device, torch_threads

        rerun_device = resolve_device(device or record.record.provenance.device_type)
        rerun_kind = device_kind(rerun_device.type, device_name(rerun_device))
        # The thread count changes the CPU's float sums: rerun with the record's, so that "the
        # record's code on the CPU" really is the same computation.
        threads = recorded_cpu_threads(record.record.provenance.device) if rerun_device.type == "cpu" else None
        keys = list(record.summary)
        allowed, how = tolerances(runs, keys, tolerance, record.result, rerun_kind)
        with_threads = f" with {threads} thread(s), as the record" if threads else ""
        print(f"rerunning {benchmark} / {method} / seed {record.seed} on {rerun_kind}{with_threads} from {record.directory}")
        if rerun_device.type == "cpu" and record.record.provenance.device_type == "cpu":
            print(cpu_kind_note(record.record.provenance.machine))
        with torch_threads(threads):
            directory = run(resolved)
        new = read_run(directory)
        if new.benchmark != benchmark:
            raise UserError(f"the rerun landed in benchmark {new.benchmark!r}, not {benchmark!r}; the stored config no longer rebuilds this entry")
        same_table = (directory / "per_class.csv").read_bytes() == (record.directory / "per_class.csv").read_bytes()
        stored_images = record.directory / PER_IMAGE
        same_images = (directory / PER_IMAGE).read_bytes() == stored_images.read_bytes() if stored_images.is_file() else None
    rows = compare_summaries(record.summary, new.summary, allowed)
    print_comparison(f"{benchmark} / {method} / seed {record.seed}: stored vs rerun", rows, how)
    print(f"per_class.csv: {'identical' if same_table else 'differs'}")
    if same_images is not None:
        print(f"{PER_IMAGE}: {'identical' if same_images else 'differs'}")
    if record.record.stages is not None and new.record.stages is not None:
        same_stage1 = new.record.stages.representation.sha256 == record.record.stages.representation.sha256
        print(f"stage-1 network ({record.record.stages.representation.spec}, retrained): {'identical weights' if same_stage1 else 'other weights'}")
    disagree = [r.metric for r in rows if not r.agrees]
    if disagree:
        print(f"DISAGREE: {len(disagree)} of {len(rows)} summary numbers differ beyond the tolerance ({', '.join(disagree[:6])}{' ...' if len(disagree) > 6 else ''})")
        return False
    print(f"agree: all {len(rows)} summary numbers within the tolerance")
    return True


def cmd_rerun(args: argparse.Namespace) -> int:
    from tailbench.methods import load_method_file

    for path in args.method_file or []:  # --device was checked by the command's dispatcher (cli/runs.py cmd_rerun)
        load_method_file(path)
    return 0 if rerun(args.results, args.benchmark, args.method, args.seed, args.tolerance, args.device, args.data_dir, args.allow_changed_code) else 1
