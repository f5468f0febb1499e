"""One benchmark run, from names to a complete run record on disk."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from tailbench.benchmarks import provenance, stages
from tailbench.benchmarks.checkpoint import Checkpointer
from tailbench.benchmarks.config import ResolvedRun, RunConfig, resolve
from tailbench.benchmarks.runtime import Runtime, choose_runtime, make_deterministic, seed_everything
from tailbench.devices import device_kind, device_name, resolve_device
from tailbench.benchmarks.evaluation import per_class_accuracy, predict_log_probs
from tailbench.benchmarks.invariance import measure_invariance
from tailbench.benchmarks.progress import print_run_summary
from tailbench.console import console
from tailbench.recipes.recipe import Recipe
from tailbench.benchmarks.run_lock import holding
from tailbench.benchmarks.trainer import train
from tailbench.datasets.base import DatasetBuilder, LongTailedData
from tailbench.datasets.sources import allow_unverified, default_data_dir
from tailbench.errors import UserError
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.models import create_model
from tailbench.models.wrappers import InputNormalization
from tailbench.nuisance import get_family
from tailbench.results import SCHEMA_VERSION, per_image
from tailbench.results.metrics import RunTables, stored_summary
from tailbench.results.record import RunRecord
from tailbench.results.store import PER_IMAGE, is_complete, json_safe, write_run
from tailbench.storage.writable import check_writable

STAGE2_FILE = "stage2.pt"  # a two-stage run's stage-2 checkpoint, beside the run's own


def run(planned: RunConfig | ResolvedRun) -> Path:
    """Train and record one run, unless it is complete. Raises RunBusy when another process is
    training it (the run folder's lock); completeness is checked again once the lock is held, so
    of two processes started on one run, one trains and the other skips or reports it busy."""
    resolved = resolve(planned)  # a ResolvedRun as it is: resolved once, by whoever checked it
    config, builder, recipe, benchmark, entry = resolved.config, resolved.builder, resolved.recipe, resolved.benchmark, resolved.entry
    for family in builder.invariance_families:
        get_family(family)
    directory = resolved.directory
    if is_complete(directory) and not config.force:
        console.print(f"{directory} is already complete; skipped (use --force to run it again)")
        return directory
    check_writable(directory, "--out")  # a file, a read-only folder or a full disk: said before any work
    with holding(directory):
        if is_complete(directory) and not config.force:
            console.print(f"{directory} was completed by another process meanwhile; skipped")
            return directory
        return train_and_record(config, builder, recipe, benchmark, entry, directory)


def train_and_record(
    config: RunConfig, builder: DatasetBuilder, recipe: Recipe, benchmark: str, entry: str, directory: Path
) -> Path:
    device = resolve_device(config.device)
    make_deterministic(device)
    code_version, code_digest = provenance.git_commit(), provenance.code_digest()
    identity = {"benchmark": benchmark, "entry": entry, "seed": config.seed, "code_sha256": code_digest,
                "device": device_kind(device.type, device_name(device))}
    checkpointer = Checkpointer(directory, identity, datetime.now(timezone.utc).isoformat(), config.checkpoint_every, config.quiet)
    if config.force:
        checkpointer.clear()  # --force starts over
    seed_everything(config.seed)
    with allow_unverified(config.allow_unverified_data):
        data = builder.load(config.data_dir or default_data_dir()).to(device)
    ctx = MethodContext(
        num_classes=data.num_classes, class_counts=data.train_counts, epochs=recipe.epochs,
        first_lr_step=recipe.first_lr_step, device=device, seed=config.seed,
        image_shape=data.image_shape, nuisance=data.nuisance,
    )
    method = ComposedMethod(config.method, ctx, config.hparams)
    training = method.training_view()  # the spec without its after-training parts: stage 1
    stages_record = None
    if method.after_training:
        def place() -> tuple[torch.nn.Module, Runtime]:
            return place_model(recipe, data, training, device)

        if method.stage is not None:
            stages.check_stage(method.stage, place)
        first = stages.stage1(training, data, recipe, device, config.seed, place, config.quiet, config.reuse_stage1,
                              config.checkpoint_every, method.stage.stage1_recipe if method.stage is not None else {})
        model, runtime, history, step_kind = first.model, first.runtime, first.history, first.step_kind
        stages_record = {"representation": first.record}
        if method.stage is not None:
            second = Checkpointer(directory, {**identity, "stage": 2}, checkpointer.started, config.checkpoint_every, config.quiet, file=STAGE2_FILE)
            stages_record["classifier"] = stages.stage2(method, model, data, recipe, runtime, config.seed, config.quiet, second)
    else:
        method.prepare(data)
        model, runtime = place_model(recipe, data, method, device)
        if device.type == "cuda" and not runtime.captured_steps and not config.quiet:
            console.print(f"{config.method}: {', '.join(method.not_capture_safe())} is not capture-safe; training steps run eagerly", soft_wrap=True)
        generator = torch.Generator(device=device).manual_seed(config.seed)
        history, step_kind = train(model, method, data.train, recipe, generator, runtime, config.quiet, checkpointer)
        if config.reuse_stage1:  # a rerun neither reads nor writes the cache
            stages.publish(method, data, recipe, device, config.seed, model, history, step_kind)
    per_class, summary, evidence = evaluate(method, model, data, recipe, config.seed, runtime)
    summary.update(method.final_summary(model))
    wall = checkpointer.wall_seconds()
    result = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": benchmark,
        "dataset": dataset_record(data),
        "method": method.describe(),
        "seed": config.seed,
        "recipe": recipe.to_json(),
        "summary": summary,
        "history": [h.model_dump() for h in history],
        "provenance": {
            "git": code_version, "code_sha256": code_digest,
            "packages": provenance.package_versions(), "machine": provenance.machine(),
            "device": device_name(device), "device_type": device.type,
            "runtime": {**runtime.to_json(), "train_step": step_kind},
            "started": checkpointer.started, "finished": datetime.now(timezone.utc), "wall_seconds": wall,
        },
        "per_image": per_image.describe(evidence, len(data.test)),
    }
    if stages_record is not None:
        result["stages"] = stages_record
    record = build_record(json_safe(result))  # tuples as lists, non-finite numbers as null
    write_run(directory, record.to_json(), per_class, {PER_IMAGE: evidence})
    checkpointer.clear()
    if not config.quiet:
        print_run_summary(f"{benchmark} / {entry} / seed {config.seed}", per_class, summary, data.invariance_families)
        console.print(f"wrote {directory} in {wall:.0f} s")
    return directory


def dataset_record(data: LongTailedData) -> dict:
    """The record's `dataset` field for the data a run (or an outside evaluation) used."""
    return {
        "name": data.name, "id": data.dataset_id, "options": data.options, "num_classes": data.num_classes,
        "manifest_sha256": data.manifest_sha256, "manifest_frozen": data.manifest_frozen,
        "nuisance": data.nuisance, "invariance_families": list(data.invariance_families), "sources": data.sources,
        "train_size": len(data.train), "val_size": len(data.val), "test_size": len(data.test),
    }


def place_model(recipe: Recipe, data: LongTailedData, method: ComposedMethod, device: torch.device) -> tuple[torch.nn.Module, Runtime]:
    """The run's model on its device, in the layout the device's runtime chose for this input."""
    runtime = choose_runtime(device, method.capture_safe)
    return build_model(recipe, data, method).to(device, memory_format=runtime.torch_format), runtime


def build_record(result: dict) -> RunRecord:
    """The typed record (the models in results/record.py); a value no record may hold, e.g. a
    method's summary number that is not a number, stops the run before anything is written."""
    from pydantic import ValidationError

    from tailbench.results.record_errors import problems

    try:
        return RunRecord.model_validate(result)
    except ValidationError as error:
        field, why = problems(error, SCHEMA_VERSION)[0]
        raise UserError(f"the run's record would be invalid, so nothing was written: {field}: {why}") from None


def build_model(recipe: Recipe, data: LongTailedData, method: ComposedMethod) -> torch.nn.Module:
    backbone = create_model(recipe.model, num_classes=data.num_classes, in_chans=data.image_shape[0])
    pixels = data.train.x.float().div(255.0).transpose(0, 1).flatten(1)
    model = InputNormalization(backbone, pixels.mean(1).cpu(), pixels.std(1).cpu())
    return method.wrap_model(model)


def evaluate(
    method: ComposedMethod, model: torch.nn.Module, data: LongTailedData, recipe: Recipe, seed: int, runtime: Runtime
) -> tuple[list[dict], dict, bytes]:
    """The per-class rows, the summary and the per-image evidence file's bytes."""
    c = data.num_classes
    test_lp = predict_log_probs(method, model, data.test.x, runtime)
    val_lp = predict_log_probs(method, model, data.val.x, runtime)
    test_acc = per_class_accuracy(test_lp, data.test.y, c)
    val_acc = per_class_accuracy(val_lp, data.val.y, c)
    overall = float((test_lp.argmax(1) == data.test.y).double().mean())
    sources = data.test.x if data.test_clean is None else data.test_clean
    ekld, consistency, per_image_invariance = {}, {}, {}
    for family_name in data.invariance_families:
        result = measure_invariance(
            method, model, get_family(family_name), data.test.x, sources, data.test.y, c,
            images_per_class=recipe.ekld_images_per_class, transforms=recipe.ekld_transforms,
            runtime=runtime, seed=seed, protocol=recipe.ekld_protocol,
        )
        ekld[family_name], consistency[family_name] = result.ekld.tolist(), result.consistency.tolist()
        per_image_invariance[family_name] = (result.chosen.numpy(), result.image_ekld.numpy(), result.image_consistency.numpy())
    counts = data.train_counts.cpu().tolist()
    test_counts = torch.bincount(data.test.y, minlength=c).cpu().tolist()
    rows = []
    for k in range(c):
        row = {
            "class": k, "class_name": data.class_names[k], "train_count": counts[k], "test_count": test_counts[k],
            "val_acc": float(val_acc[k]), "test_acc": float(test_acc[k]),
        }
        for family_name in data.invariance_families:
            row[f"ekld_{family_name}"] = ekld[family_name][k]
            row[f"consistency_{family_name}"] = consistency[family_name][k]
        rows.append(row)
    summary = stored_summary(RunTables(pd.DataFrame(rows), tuple(data.invariance_families), accuracy=overall))
    if any(v is not None and isinstance(v, float) and math.isnan(v) for v in summary.values()):
        raise UserError("evaluation produced NaN summary metrics; the model's predictions are not finite")
    probs = test_lp.float().exp()
    labels = data.test.y
    evidence = per_image.encode(
        labels.cpu().numpy(), test_lp.argmax(1).cpu().numpy(), probs.max(1).values.cpu().numpy(),
        probs.gather(1, labels.view(-1, 1)).squeeze(1).cpu().numpy(), per_image_invariance,
    )
    return rows, summary, evidence
