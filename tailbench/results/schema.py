"""The run-record schema: every field of result.json with its type and range, and per_class.csv.

`validate_run(directory)` reads a run folder (plain bytes, JSON and CSV only: nothing is executed
or unpickled) and returns a `Checked` holding the bytes it read and every problem found, each a
(field, reason) pair. A record with no problems is what `tailbench submit` accepts.

Version 1 (SCHEMA_VERSION in tailbench.results) is what `tailbench run` writes today. Adding,
removing or retyping a field of result.json means a new version here. One optional field came
later without a new version because its absence means what older records meant:
`method.changed` (the hyper-parameters that differ from their defaults; absent: none). Fields are closed: an
unknown key is a problem, except inside `method` entries, `dataset.sources` entries, history
`method` logs and `summary` (where a method's own numbers, e.g. `learned_*`, are welcome as long
as they are finite numbers or null).

Beyond types and ranges, a record must agree with the registry of this checkout: its dataset id
is what the dataset's options give, its manifest sha256 (and frozen flag) are the registry's for
that id, the split sizes and per-class train/test counts are the manifest's, its recipe is the
named recipe with the stored overrides, and the benchmark id follows from both.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tailbench.results import SCHEMA_VERSION
from tailbench.results.schema_types import AnyJson, Flag, ListOf, MapOf, Number, Obj, Scalar, Text, Timestamp, check, type_name
from tailbench.results.records import record_method_id
from tailbench.results.store import DONE, PER_CLASS, RESULT, benchmark_id

MAX_FILE_BYTES = 64 * 2**20
SHA256 = re.compile(r"[0-9a-f]{64}")


PROBABILITY = Number(0.0, 1.0)
COUNT = Number(0, integer=True)
POSITIVE = Number(1, integer=True)

RESULT_V1 = Obj({
    "schema_version": Number(integer=True),
    "benchmark": Text(),
    "dataset": Obj({
        "name": Text(),
        "id": Text(),
        "options": MapOf(Scalar()),
        "num_classes": Number(2, integer=True),
        "manifest_sha256": Text(),
        "manifest_frozen": Flag(),
        "nuisance": Text(nullable=True),
        "invariance_families": ListOf(Text()),
        "sources": ListOf(Obj({"path": Text()}, open=True)),  # plus the checksum its dataset verifies (sha256, md5, ...)
        "train_size": POSITIVE,
        "val_size": COUNT,
        "test_size": POSITIVE,
    }),
    "method": Obj({
        "spec": Text(),
        "parts": ListOf(Obj({"name": Text(), "kind": Text(choices=("loss", "rule", "augmentation")), "paper": Text(nonempty=False)}, open=True), min_items=1),
        "hparams": MapOf(MapOf(AnyJson())),
    }, open=True),
    "seed": COUNT,
    "recipe": Obj({
        "name": Text(),
        "model": Text(),
        "epochs": POSITIVE,
        "batch_size": POSITIVE,
        "lr": Number(0.0),
        "momentum": Number(0.0),
        "weight_decay": Number(0.0),
        "nesterov": Flag(),
        "warmup_epochs": COUNT,
        "milestones": ListOf(COUNT),
        "factors": ListOf(Number(0.0)),
        "augment": ListOf(Text()),
        "eval_batch_size": POSITIVE,
        "ekld_images_per_class": POSITIVE,
        "ekld_transforms": POSITIVE,
        "overrides": MapOf(Number(0.0)),
    }),
    "summary": MapOf(Number(nullable=True)),
    "history": ListOf(Obj({
        "epoch": COUNT,
        "lr": Number(0.0),
        "loss": Number(nullable=True),
        "train_acc": Number(0.0, 1.0, nullable=True),
        "images_per_s": Number(0.0),
        "seconds": Number(0.0),
        "method": MapOf(AnyJson()),
    }, open=True)),
    "provenance": Obj({
        "git": Obj({"commit": Text(nullable=True), "dirty": Flag(nullable=True)}),
        "packages": MapOf(Text(nullable=True)),
        "machine": MapOf(Text(nonempty=False)),
        "device": Text(),
        "device_type": Text(),
        "started": Timestamp(),
        "finished": Timestamp(),
        "wall_seconds": Number(0.0),
    }),
})

# summary keys every record has, with their ranges; {f} is each invariance family.
SUMMARY_V1 = {
    "accuracy": PROBABILITY,
    "balanced_accuracy": PROBABILITY,
    "val_balanced_accuracy": Number(0.0, 1.0, nullable=True),
    "many_shot_accuracy": Number(0.0, 1.0, nullable=True),
    "medium_shot_accuracy": Number(0.0, 1.0, nullable=True),
    "few_shot_accuracy": Number(0.0, 1.0, nullable=True),
    "head_accuracy": PROBABILITY,
    "tail_accuracy": PROBABILITY,
    "worst_class_accuracy": PROBABILITY,
}
SUMMARY_PER_FAMILY_V1 = {
    "ekld_{f}": Number(0.0, nullable=True),
    "head_ekld_{f}": Number(0.0, nullable=True),
    "tail_ekld_{f}": Number(0.0, nullable=True),
    "consistency_{f}": Number(0.0, 1.0, nullable=True),
    "spearman_ekld_count_{f}": Number(-1.0, 1.0, nullable=True),
}
REQUIRED_PACKAGES = ("python", "torch")


def per_class_columns(families: list[str]) -> list[str]:
    columns = ["class", "class_name", "train_count", "test_count", "val_acc", "test_acc"]
    for family in families:
        columns += [f"ekld_{family}", f"consistency_{family}"]
    return columns


# -- the record as read from disk -----------------------------------------------------------------
@dataclass
class Checked:
    directory: Path
    files: dict[str, bytes] = field(default_factory=dict)  # the bytes validated, the bytes copied
    result: dict | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def reason(self) -> str:
        """The first problem, as `field: reason`, plus how many more there are."""
        where, why = self.problems[0]
        more = f" (and {len(self.problems) - 1} more problem{'s' if len(self.problems) > 2 else ''})" if len(self.problems) > 1 else ""
        return f"{where}: {why}{more}"


def _read(directory: Path, name: str, checked: Checked) -> None:
    path = directory / name
    if path.is_symlink():
        checked.problems.append((name, "is a symbolic link; submit plain files"))
    elif not path.is_file():
        if name == DONE:
            checked.problems.append((DONE, "missing: the run is incomplete (it never finished writing its record)"))
        else:
            checked.problems.append((name, "missing"))
    elif path.stat().st_size > MAX_FILE_BYTES:
        checked.problems.append((name, f"is {path.stat().st_size} bytes; the limit is {MAX_FILE_BYTES}"))
    else:
        checked.files[name] = path.read_bytes()


def _no_constants(token: str) -> object:
    raise ValueError(f"{token} is not allowed (write null for a missing number)")


def parse_result(data: bytes, checked: Checked) -> dict | None:
    try:
        result = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as error:
        checked.problems.append((RESULT, f"is not valid JSON ({' '.join(str(error).split())})"))
        return None
    if not isinstance(result, dict):
        checked.problems.append((RESULT, f"expected a JSON object, got {type_name(result)}"))
        return None
    return result


def validate_run(directory: Path) -> Checked:
    checked = Checked(Path(directory))
    if not checked.directory.is_dir():
        checked.problems.append((str(directory), "is not a folder"))
        return checked
    for name in (RESULT, PER_CLASS, DONE):
        _read(checked.directory, name, checked)
    if RESULT not in checked.files:
        return checked
    result = parse_result(checked.files[RESULT], checked)
    if result is None:
        return checked
    checked.result = result
    version = result.get("schema_version")
    if version != SCHEMA_VERSION:
        reason = "missing" if "schema_version" not in result else f"{json.dumps(version)[:20]} is not supported (this tailbench reads version {SCHEMA_VERSION})"
        checked.problems.append(("schema_version", reason))
        return checked
    structural: list[tuple[str, str]] = []
    check(result, RESULT_V1, "", structural)
    checked.problems += structural
    if structural:  # the cross-field checks below assume the types are right
        return checked
    checked.problems += _check_record(result)
    registry, problems = _registry(result["dataset"])
    checked.problems += problems
    if registry is not None:
        builder, manifest, frozen = registry
        checked.problems += _check_dataset(result, builder, manifest, frozen)
        if PER_CLASS in checked.files and not checked.problems:
            checked.problems += _check_per_class(result, checked.files[PER_CLASS], manifest)
    return checked


# -- cross-field checks ---------------------------------------------------------------------------
def _path_component(value: str) -> str | None:
    if value in {".", ".."} or value.startswith(".") or "/" in value or "\\" in value or "\x00" in value:
        return f"{value[:60]!r} cannot name a folder (no '/', '\\', NUL or leading '.')"
    if len(value.encode()) > 200:
        return "is longer than 200 bytes"
    return None


def _check_record(result: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key, value in (("benchmark", result["benchmark"]), ("method.spec", result["method"]["spec"])):
        bad = _path_component(value)
        if bad:
            problems.append((key, bad))
    method = result["method"]
    names = [part["name"] for part in method["parts"]]
    if method["spec"] != "+".join(names):
        problems.append(("method.spec", f"{method['spec']!r} does not match its parts {'+'.join(names)!r}"))
    if sorted(method["hparams"]) != sorted(names):
        problems.append(("method.hparams", f"has entries for {sorted(method['hparams'])}, expected one per part {sorted(names)}"))
    changed_problems = _check_changed(method)
    problems += changed_problems
    if not changed_problems and _path_component(record_method_id(result)):
        problems.append(("method.changed", f"the entry name {record_method_id(result)[:60]!r} {_path_component(record_method_id(result))}"))
    problems += _check_summary(result)
    recipe = result["recipe"]
    if len(result["history"]) != recipe["epochs"]:
        problems.append(("history", f"has {len(result['history'])} epochs; recipe.epochs is {recipe['epochs']}"))
    for i, epoch in enumerate(result["history"]):
        if epoch["epoch"] != i:
            problems.append((f"history[{i}].epoch", f"is {epoch['epoch']}, expected {i}"))
            break
    provenance = result["provenance"]
    for package in REQUIRED_PACKAGES:
        if not provenance["packages"].get(package):
            problems.append((f"provenance.packages.{package}", "missing"))
    if datetime.fromisoformat(provenance["finished"]) < datetime.fromisoformat(provenance["started"]):
        problems.append(("provenance.finished", "is earlier than provenance.started"))
    problems += _check_recipe(recipe)
    return problems


def _check_changed(method: dict) -> list[tuple[str, str]]:
    """`method.changed` (absent in older records: nothing changed) names exactly the
    hyper-parameters that differ from their part's default, with their resolved values, so
    that a variant can never pass for the plain spec on the leaderboard. Defaults are known for
    the parts registered here; a part from a submitter's file is checked for consistency only."""
    from tailbench.methods import method_parts

    changed = method.get("changed", {})
    if not isinstance(changed, dict):
        return [("method.changed", f"expected an object of part.key -> value, got {type_name(changed)}")]
    problems: list[tuple[str, str]] = []
    for dotted, value in changed.items():
        part, _, key = dotted.partition(".")
        if key not in method["hparams"].get(part, {}):
            problems.append((f"method.changed.{dotted}", "names no hyper-parameter in method.hparams"))
        elif method["hparams"][part][key] != value:
            problems.append((f"method.changed.{dotted}", f"is {json.dumps(value)[:40]}; method.hparams holds {json.dumps(method['hparams'][part][key])[:40]}"))
    registered = method_parts()
    for part, values in method["hparams"].items():
        if part not in registered or not isinstance(values, dict):
            continue
        defaults = registered[part].hparams
        for key, value in values.items():
            dotted = f"{part}.{key}"
            if key not in defaults:
                problems.append((f"method.hparams.{dotted}", f"{part} has no such hyper-parameter here ({', '.join(sorted(defaults)) or 'none'})"))
            elif (value != defaults[key]) != (dotted in changed):
                state = "differs from" if value != defaults[key] else "equals"
                problems.append((f"method.changed.{dotted}", f"{'missing' if dotted not in changed else 'listed'} though the value {state} the default {json.dumps(defaults[key])}"))
    return problems


def _check_summary(result: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    summary = result["summary"]
    expected = dict(SUMMARY_V1)
    for family in result["dataset"]["invariance_families"]:
        expected.update({key.format(f=family): spec for key, spec in SUMMARY_PER_FAMILY_V1.items()})
    for key, spec in expected.items():
        if key not in summary:
            problems.append((f"summary.{key}", "missing"))
        else:
            check(summary[key], spec, f"summary.{key}", problems)
    return problems


def _check_recipe(recipe: dict) -> list[tuple[str, str]]:
    from tailbench.benchmarks.recipe import RECIPE_OVERRIDES, load_recipe, recipe_names, with_overrides
    from tailbench.errors import UserError

    if recipe["name"] not in recipe_names():
        return [("recipe.name", f"{recipe['name']!r} is not a recipe of this tailbench ({', '.join(recipe_names())})")]
    unknown = sorted(set(recipe["overrides"]) - set(RECIPE_OVERRIDES))
    if unknown:
        return [(f"recipe.overrides.{unknown[0]}", f"is not an override `tailbench run` accepts ({', '.join(RECIPE_OVERRIDES)})")]
    try:
        rebuilt = with_overrides(load_recipe(recipe["name"]), **recipe["overrides"]).to_json()
    except UserError as error:
        return [("recipe.overrides", str(error))]
    rebuilt = json.loads(json.dumps(rebuilt))  # tuples to lists, as stored
    for key, value in rebuilt.items():
        if recipe.get(key) != value:
            return [(f"recipe.{key}", f"{json.dumps(recipe.get(key))[:60]} differs from recipe {recipe['name']!r} with the stored overrides ({json.dumps(value)[:60]})")]
    return []


def registry_manifest(name: str, options: dict):
    """(builder, manifest, frozen) from this checkout's dataset registry; raises UserError."""
    from tailbench.datasets import get_dataset

    builder = get_dataset(name, {key: str(value) for key, value in options.items()})
    manifest, frozen = builder.manifest()
    return builder, manifest, frozen


def _registry(dataset: dict):
    """((builder, manifest, frozen) or None, problems)."""
    from tailbench.errors import UserError

    try:
        return registry_manifest(dataset["name"], dataset["options"]), []
    except UserError as error:
        return None, [("dataset", " ".join(str(error).split()))]
    except Exception as error:  # a dataset builder rejecting odd option values in its own way
        return None, [("dataset.options", f"the registry cannot build {dataset['name']!r} from them ({type(error).__name__}: {' '.join(str(error).split())})")]


def _check_dataset(result: dict, builder, manifest, frozen: bool) -> list[tuple[str, str]]:
    dataset = result["dataset"]
    problems: list[tuple[str, str]] = []
    if dataset["id"] != builder.dataset_id:
        problems.append(("dataset.id", f"{dataset['id']!r} is not the id its options give ({builder.dataset_id!r})"))
    if dataset["manifest_sha256"] != manifest.sha256:
        frozen_word = "frozen manifest" if frozen else "manifest (generated; no frozen one is committed)"
        problems.append(("dataset.manifest_sha256", f"{dataset['manifest_sha256'][:16]}... does not match the registry's {frozen_word} for {builder.dataset_id} ({manifest.sha256[:16]}...)"))
    if dataset["manifest_frozen"] != frozen:
        problems.append(("dataset.manifest_frozen", f"is {json.dumps(dataset['manifest_frozen'])}; the registry's manifest for {builder.dataset_id} is {'' if frozen else 'not '}frozen"))
    if dataset["num_classes"] != len(manifest.class_names):
        problems.append(("dataset.num_classes", f"is {dataset['num_classes']}; the manifest has {len(manifest.class_names)} classes"))
    if list(dataset["invariance_families"]) != list(builder.invariance_families):
        problems.append(("dataset.invariance_families", f"{dataset['invariance_families']} differ from the dataset's {list(builder.invariance_families)}"))
    if dataset["nuisance"] != builder.nuisance:
        problems.append(("dataset.nuisance", f"{json.dumps(dataset['nuisance'])} differs from the dataset's {json.dumps(builder.nuisance)}"))
    for split in ("train", "val", "test"):
        total = sum(manifest.counts(split))
        if dataset[f"{split}_size"] != total:
            problems.append((f"dataset.{split}_size", f"is {dataset[f'{split}_size']}; the manifest's {split} split has {total} images"))
    benchmark = benchmark_id(builder.dataset_id, builder.recipe, result["recipe"]["name"], result["recipe"]["overrides"])
    if result["benchmark"] != benchmark:
        problems.append(("benchmark", f"{result['benchmark']!r} does not follow from the dataset and recipe ({benchmark!r})"))
    return problems


def _cell(text: str, kind: str) -> tuple[float | int | None, str | None]:
    """Parse one CSV cell: 'int', 'float' (empty = missing) or 'text'."""
    if kind == "int":
        try:
            return int(text), None
        except ValueError:
            return None, f"{text[:30]!r} is not an integer"
    if text == "":
        return None, None
    try:
        value = float(text)
    except ValueError:
        return None, f"{text[:30]!r} is not a number"
    if not math.isfinite(value):
        return None, f"{text[:30]!r} is not finite"
    return value, None


def _check_per_class(result: dict, data: bytes, manifest) -> list[tuple[str, str]]:
    dataset = result["dataset"]
    families = list(dataset["invariance_families"])
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as error:
        return [(PER_CLASS, f"is not a readable CSV file ({error})")]
    if not rows:
        return [(PER_CLASS, "is empty")]
    header, body = rows[0], [r for r in rows[1:] if r]
    expected = per_class_columns(families)
    if header != expected:
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        detail = (f"missing {', '.join(missing)}" if missing else "") + ("; " if missing and extra else "") + (f"unexpected {', '.join(extra)}" if extra else "")
        return [(f"{PER_CLASS} columns", f"{detail or 'out of order'}; expected {','.join(expected)}")]
    if len(body) != dataset["num_classes"]:
        return [(f"{PER_CLASS} rows", f"{len(body)} rows; the dataset has {dataset['num_classes']} classes")]
    train, test, names = manifest.counts("train"), manifest.counts("test"), list(manifest.class_names)
    kinds = {"class": "int", "class_name": "text", "train_count": "int", "test_count": "int"}
    ranges = {"val_acc": PROBABILITY, "test_acc": PROBABILITY}
    for family in families:
        ranges[f"ekld_{family}"] = Number(0.0)
        ranges[f"consistency_{family}"] = PROBABILITY
    columns: dict[str, list] = {c: [] for c in header}
    for k, row in enumerate(body):
        where = f"{PER_CLASS} row {k + 1}"
        problems: list[tuple[str, str]] = []
        if len(row) != len(header):
            return [(where, f"has {len(row)} cells; the header has {len(header)}")]
        for column, text in zip(header, row):
            kind = kinds.get(column, "float")
            value, bad = (text, None) if kind == "text" else _cell(text, kind)
            if bad:
                problems.append((f"{where} {column}", bad))
            elif value is not None and column in ranges:
                check(value, ranges[column], f"{where} {column}", problems)
            columns[column].append(value)
        if problems:
            return problems
        got = {column: columns[column][-1] for column in header}
        if got["class"] != k:
            problems.append((f"{where} class", f"is {got['class']}, expected {k} (rows in class order)"))
        if got["class_name"] != names[k]:
            problems.append((f"{where} class_name", f"{got['class_name']!r} is not the manifest's name {names[k]!r}"))
        if got["train_count"] != train[k]:
            problems.append((f"{where} train_count", f"is {got['train_count']}; the manifest has {train[k]} training images in class {k}"))
        if got["test_count"] != test[k]:
            problems.append((f"{where} test_count", f"is {got['test_count']}; the manifest has {test[k]} test images in class {k}"))
        if got["test_acc"] is None and test[k] > 0:
            problems.append((f"{where} test_acc", "is missing though the class has test images"))
        if problems:
            return problems
    return _check_summary_matches_table(result["summary"], columns, families)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-9 * abs(b)


def _check_summary_matches_table(summary: dict, columns: dict[str, list], families: list[str]) -> list[tuple[str, str]]:
    """The summary's means must be the means of the per-class table it came with."""
    pairs = [("balanced_accuracy", "test_acc")] + [(f"ekld_{f}", f"ekld_{f}") for f in families]
    problems = []
    for key, column in pairs:
        values = [v for v in columns[column] if v is not None]
        if summary.get(key) is None or not values:
            continue
        mean = math.fsum(values) / len(values)
        if not _close(summary[key], mean):
            problems.append((f"summary.{key}", f"{summary[key]:.6g} is not the mean of {PER_CLASS} {column} ({mean:.6g})"))
    return problems


def describe(result: dict[str, Any]) -> str:
    return f"{result['benchmark']} / {record_method_id(result)} / seed {result['seed']}"
