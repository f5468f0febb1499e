"""The run-record schema: every field of result.json with its type and range, and per_class.csv.

`validate_run(directory)` reads a run folder (plain bytes, JSON and CSV only: nothing is executed
or unpickled) and returns a `Checked` holding the bytes it read and every problem found, each a
(field, reason) pair. A record with no problems is what `tailbench submit` accepts.

Version 1 (SCHEMA_VERSION in tailbench.results) is what `tailbench run` writes today. Adding,
removing or retyping a field of result.json means a new version here. One optional field came
later without a new version because its absence means what older records meant:
`method.changed` (the hyper-parameters that differ from their defaults; absent: none). Fields
are closed: an unknown key is a problem, except inside `method` entries, `dataset.sources` entries, history
`method` logs and `summary` (where a method's own numbers, e.g. `learned_*`, are welcome as long
as they are finite numbers or null).

Beyond types and ranges, a record must agree with the registry of this checkout: its dataset id
is what the dataset's options give, its manifest sha256 (and frozen flag) are the registry's for
that id, the split sizes and per-class train/test counts are the manifest's, its recipe is the
named recipe with the stored overrides, and the benchmark id follows from both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tailbench.results import SCHEMA_VERSION
from tailbench.results.schema_types import AnyJson, Flag, ListOf, MapOf, Number, Obj, Scalar, Text, Timestamp, check, type_name
from tailbench.results.admission import admission_problems
from tailbench.results.consistency import check_consistency
from tailbench.results.safe_json import MAX_BYTES, JsonTooLarge, loads_bounded
from tailbench.results.code_check import code_problems
from tailbench.results.schema_per_class import PROBABILITY, check_per_class
from tailbench.results.store import DONE, PER_CLASS, RESULT, benchmark_id, path_component_problem, record_method_id

MAX_FILE_BYTES = MAX_BYTES


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
        "eval_batch_size": POSITIVE,  # until the runtime chose it per device (provenance.runtime)
        "ekld_images_per_class": POSITIVE,
        "ekld_transforms": POSITIVE,
        "overrides": MapOf(Number(0.0)),
    }, optional=("eval_batch_size",)),
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
        "git": Obj({
            "commit": Text(nullable=True), "dirty": Flag(nullable=True),
            "source": Text(nullable=True, choices=("git", "TAILBENCH_COMMIT")),  # where the commit was read
        }, optional=("source",)),
        "code_sha256": Text(),  # the tailbench package's files (benchmarks/provenance.code_digest)
        "packages": MapOf(Text(nullable=True)),
        "machine": MapOf(Text(nonempty=False)),
        "device": Text(),
        "device_type": Text(),
        "runtime": Obj({
            "memory_format": Text(choices=("channels_last", "contiguous")),
            "eval_batch_size": POSITIVE,
            "captured_steps": Flag(),
            "deterministic": Flag(),
            "train_step": Text(),
        }),
        "started": Timestamp(),
        "finished": Timestamp(),
        "wall_seconds": Number(0.0),
    }, optional=("code_sha256", "runtime")),  # records before the per-device runtime lack them
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
    else:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            checked.problems.append((name, f"cannot be read ({error.strerror or error})"))
            return
        if len(data) > MAX_FILE_BYTES:
            checked.problems.append((name, f"is over {MAX_FILE_BYTES:,} bytes, the limit"))
        elif name == DONE and data:
            checked.problems.append((DONE, f"holds {len(data)} bytes; the marker of a finished run is an empty file"))
        else:
            checked.files[name] = data


def parse_result(data: bytes, checked: Checked) -> dict | None:
    try:
        result = loads_bounded(data)
    except JsonTooLarge as error:
        checked.problems.append((RESULT, str(error)))
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
            checked.problems += check_per_class(result, checked.files[PER_CLASS], manifest)
            if not checked.problems:  # the record as a whole: its summary is its table's
                checked.problems += check_consistency(result, checked.files[PER_CLASS], manifest)
    checked.problems += admission_problems(result)
    return checked


# -- cross-field checks ---------------------------------------------------------------------------
def _check_record(result: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key, value in (("benchmark", result["benchmark"]), ("method.spec", result["method"]["spec"])):
        bad = path_component_problem(value)
        if bad:
            problems.append((key, bad))
    method = result["method"]
    names = [part["name"] for part in method["parts"]]
    if method["spec"] != "+".join(names):
        problems.append(("method.spec", f"{method['spec']!r} does not match its parts {'+'.join(names)!r}"))
    if sorted(method["hparams"]) != sorted(names):
        problems.append(("method.hparams", f"has entries for {sorted(method['hparams'])}, expected one per part {sorted(names)}"))
    changed_problems = _check_changed(method)
    bad_entry = None if changed_problems else path_component_problem(record_method_id(result))
    problems += changed_problems + ([("method.changed", f"makes the entry name {bad_entry}")] if bad_entry else [])
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
    problems += code_problems(result)
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


def describe(result: dict[str, Any]) -> str:
    return f"{result['benchmark']} / {record_method_id(result)} / seed {result['seed']}"
