"""`tailbench submit`'s validation of a run folder: the typed record models, then this checkout's
registries.

`validate_run(directory)` reads a run folder (plain bytes, JSON and CSV only: nothing is executed
or unpickled) and returns a `Checked` holding the bytes it read, the validated `RunRecord`, and
every problem found, each a (field, reason) pair. A record with no problems is what `tailbench
submit` accepts.

The fields, their types and ranges, and the checks that need nothing but the record are the
models' (tailbench/results/record.py; its JSON Schema is docs/run-record.schema.json). On top of
them a record must agree with the registries of this checkout: its dataset id is what the
dataset's options give, its manifest sha256 (and frozen flag) are the registry's for that id, the
split sizes and per-class train/test counts are the manifest's (per_class.csv: schema_per_class.py),
its recipe is the named recipe with the stored overrides, the benchmark id follows from both, and
`method.changed` names exactly the hyper-parameters that differ from the registered parts' defaults.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from tailbench.submission.admission import admission_problems
from tailbench.submission.code_check import code_problems
from tailbench.submission.consistency import check_consistency
from tailbench.results.record import RunRecord
from tailbench.results.record_errors import type_name
from tailbench.results.schema import validate_record
from tailbench.results import per_image
from tailbench.storage.safe_json import MAX_BYTES, JsonTooLarge, loads_bounded
from tailbench.submission.schema_per_class import check_per_class
from tailbench.results.store import DONE, PER_CLASS, PER_IMAGE, RESULT, benchmark_id

MAX_FILE_BYTES = MAX_BYTES


# -- the record as read from disk -----------------------------------------------------------------
SHOWN_PROBLEMS = 20  # problems listed per rejected record


@dataclass
class Checked:
    directory: Path
    files: dict[str, bytes] = field(default_factory=dict)  # the bytes validated, the bytes copied
    result: dict | None = None
    record: RunRecord | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def reason(self) -> str:
        """The first problem, as `field: reason`, plus how many more there are (one line, for
        listings that give a record one line, such as the leaderboard's)."""
        where, why = self.problems[0]
        more = f" (and {len(self.problems) - 1} more problem{'s' if len(self.problems) > 2 else ''})" if len(self.problems) > 1 else ""
        return f"{where}: {why}{more}"

    def reasons(self, limit: int = SHOWN_PROBLEMS) -> list[str]:
        """Every problem as `field: reason`, up to `limit`, then how many more there are."""
        lines = [f"{where}: {why}" for where, why in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        return lines


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
    record, problems = validate_record(result)
    checked.problems += problems
    if record is None:  # the registry checks below assume the types are right
        return checked
    checked.record = record
    checked.problems += _check_builtin_parts(record.method.parts) + _check_changed(record.method.model_dump()) + code_problems(result)
    registry, problems = _registry(record.dataset)
    checked.problems += problems + _check_recipe(record.recipe.model_dump())
    if registry is not None:
        builder, manifest, frozen = registry
        checked.problems += _check_dataset(record, builder, manifest, frozen) + _check_sources(record, builder)
        if PER_CLASS in checked.files and not checked.problems:
            checked.problems += check_per_class(record, checked.files[PER_CLASS], manifest)
            if not checked.problems:  # the record as a whole: its summary is its table's
                checked.problems += check_consistency(result, checked.files[PER_CLASS], manifest)
    checked.problems += _check_evidence(record, checked, table_ok=not checked.problems)
    checked.problems += admission_problems(result)
    return checked


def _check_evidence(record: RunRecord, checked: Checked, table_ok: bool) -> list[tuple[str, str]]:
    """The per-image file: present exactly when result.json lists it, and (when the record's
    per_class.csv passed its checks, table_ok) what it says it is."""
    present = (checked.directory / PER_IMAGE).exists() or (checked.directory / PER_IMAGE).is_symlink()
    if record.per_image is None:
        return [(PER_IMAGE, "is in the folder but result.json lists no per_image file; remove it or remake the record")] if present else []
    if not present:
        return [(PER_IMAGE, "missing: result.json lists it (per_image)")]
    _read(checked.directory, PER_IMAGE, checked)
    if PER_IMAGE not in checked.files or not table_ok:
        return []  # _read, or the checks of per_class.csv, said why
    import pandas as pd

    try:
        per_class = pd.read_csv(io.BytesIO(checked.files[PER_CLASS]), dtype={"class_name": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return []  # the per_class.csv checks say why
    return per_image.check(checked.files[PER_IMAGE], record.per_image.model_dump(), list(record.dataset.invariance_families), per_class)


# -- checks against the registries -----------------------------------------------------------
def _check_builtin_parts(parts) -> list[tuple[str, str]]:
    """A part the record calls built in (origin "builtin", or none in a version-1 record) must be a
    part this tailbench ships, of the same kind: a record cannot pass off other code as built in."""
    from tailbench.methods import method_parts, part_source

    registered = method_parts()
    problems: list[tuple[str, str]] = []
    for i, part in enumerate(parts):
        if part.origin not in (None, "builtin"):
            continue
        here = registered.get(part.name)
        if here is None or part_source(here).origin != "builtin":
            problems.append((f"method.parts[{i}]", f"{part.name!r} is recorded as built in, but this tailbench has no built-in part of that name"))
        elif here.kind != part.kind:
            problems.append((f"method.parts[{i}].kind", f"is {part.kind!r}; the built-in {part.name!r} is a {here.kind}"))
    return problems


def _check_changed(method: dict) -> list[tuple[str, str]]:
    """`method.changed` (absent in version-1 records: nothing changed) names exactly the
    hyper-parameters that differ from their part's default, so that a variant can never pass for
    the plain spec on the leaderboard. Defaults are known for the parts registered here; a part
    from a submitter's file is checked for consistency only (by the model)."""
    from tailbench.methods import method_parts

    changed = method.get("changed") or {}
    problems: list[tuple[str, str]] = []
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


def _check_recipe(recipe: dict) -> list[tuple[str, str]]:
    from tailbench.recipes.recipe import LEGACY_RECIPE_FIELDS, RECIPE_OVERRIDES, load_recipe, recipe_names, with_overrides
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
        if recipe.get(key, LEGACY_RECIPE_FIELDS.get(key)) != value:
            return [(f"recipe.{key}", f"{json.dumps(recipe.get(key))[:60]} differs from recipe {recipe['name']!r} with the stored overrides ({json.dumps(value)[:60]})")]
    return []


def registry_manifest(name: str, options: dict):
    """(builder, manifest, frozen) from this checkout's dataset registry; raises UserError."""
    from tailbench.datasets import get_dataset

    builder = get_dataset(name, {key: str(value) for key, value in options.items()})
    manifest, frozen = builder.manifest()
    return builder, manifest, frozen


def _registry(dataset):
    """((builder, manifest, frozen) or None, problems)."""
    from tailbench.errors import UserError

    try:
        return registry_manifest(dataset.name, dataset.options), []
    except UserError as error:
        return None, [("dataset", " ".join(str(error).split()))]
    except Exception as error:  # a dataset builder rejecting odd option values in its own way
        return None, [("dataset.options", f"the registry cannot build {dataset.name!r} from them ({type(error).__name__}: {' '.join(str(error).split())})")]


def _check_sources(record: RunRecord, builder) -> list[tuple[str, str]]:
    """Every verified source names a checksum this tailbench pins for the dataset (unverified and
    unpinned sources are admission's to refuse): a record cannot claim files it did not check."""
    pinned = builder.pinned_checksums()
    if pinned is None:
        return []
    if not record.dataset.sources:
        return [("dataset.sources", f"is empty; a {builder.dataset_id} record names the files it read and their checksums")]
    problems: list[tuple[str, str]] = []
    for i, source in enumerate(record.dataset.sources):
        if source.unverified or source.pinned is False or "not pinned" in str((source.model_extra or {}).get("check", "")):
            continue
        named = {key: value for key, value in (source.model_extra or {}).items() if key in ("sha256", "md5")}
        if not named:
            problems.append((f"dataset.sources[{i}]", f"{source.path[:120]} names no checksum (sha256 or md5)"))
        elif not set(named.values()) & pinned:
            key, value = next(iter(named.items()))
            problems.append((f"dataset.sources[{i}].{key}", f"{value[:16]}... is not a checksum this tailbench pins for {builder.dataset_id}'s files"))
    return problems


def _check_dataset(record: RunRecord, builder, manifest, frozen: bool) -> list[tuple[str, str]]:
    dataset = record.dataset
    problems: list[tuple[str, str]] = []
    if dataset.id != builder.dataset_id:
        problems.append(("dataset.id", f"{dataset.id!r} is not the id its options give ({builder.dataset_id!r})"))
    if dataset.manifest_sha256 != manifest.sha256:
        frozen_word = "frozen manifest" if frozen else "manifest (generated; no frozen one is committed)"
        problems.append(("dataset.manifest_sha256", f"{dataset.manifest_sha256[:16]}... does not match the registry's {frozen_word} for {builder.dataset_id} ({manifest.sha256[:16]}...)"))
    if dataset.manifest_frozen != frozen:
        problems.append(("dataset.manifest_frozen", f"is {json.dumps(dataset.manifest_frozen)}; the registry's manifest for {builder.dataset_id} is {'' if frozen else 'not '}frozen"))
    if dataset.num_classes != len(manifest.class_names):
        problems.append(("dataset.num_classes", f"is {dataset.num_classes}; the manifest has {len(manifest.class_names)} classes"))
    if list(dataset.invariance_families) != list(builder.invariance_families):
        problems.append(("dataset.invariance_families", f"{dataset.invariance_families} differ from the dataset's {list(builder.invariance_families)}"))
    if dataset.nuisance != builder.nuisance:
        problems.append(("dataset.nuisance", f"{json.dumps(dataset.nuisance)} differs from the dataset's {json.dumps(builder.nuisance)}"))
    for split in ("train", "val", "test"):
        total, stored = sum(manifest.counts(split)), getattr(dataset, f"{split}_size")
        if stored != total:
            problems.append((f"dataset.{split}_size", f"is {stored}; the manifest's {split} split has {total} images"))
    benchmark = benchmark_id(builder.dataset_id, builder.recipe, record.recipe.name, record.recipe.overrides)
    if record.benchmark != benchmark:
        problems.append(("benchmark", f"{record.benchmark!r} does not follow from the dataset and recipe ({benchmark!r})"))
    return problems


def describe(record: RunRecord) -> str:
    return record.describe()
