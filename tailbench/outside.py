"""`tailbench evaluate`: a model trained outside tailbench, evaluated as a harness run evaluates
its own, and written as a standard record marked as trained outside (RunRecord.outside).

The network comes from a model file, a Python file that defines

    def build_model(num_classes: int, image_shape: tuple[int, int, int], **options) -> torch.nn.Module

(taking float images in [0, 1], returning one logit per class; `--model-opt key=value` are the
options), or from `timm:NAME` (timm.create_model(NAME, num_classes=..., in_chans=...)). The
checkpoint is loaded with `torch.load(weights_only=True)`, so it can hold tensors only, never code:
a state dict, or a dict holding one under `state_dict` or `model`. The record keeps the
checkpoint's sha256 and size, the model file's text and sha256, the parameter count and the model
card the submitter gives (name, paper or code URL, training data, whether the test split was used
for model selection); `rerun` re-evaluates the checkpoint when given it.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tailbench.errors import UserError
from tailbench.options import parse_assignments

CARD_FIELDS = ("name", "url", "training_data", "test_used_for_selection")
TIMM_PREFIX = "timm:"
YES, NO = ("yes", "true", "1"), ("no", "false", "0")


def parse_card(assignments: list[str] | None) -> dict[str, object]:
    """--card key=value pairs as a model card; every field is required."""
    raw = parse_assignments("--card", assignments)
    unknown = sorted(set(raw) - set(CARD_FIELDS))
    if unknown:
        raise UserError(f"--card {unknown[0]}: not a model-card field; the fields are {', '.join(CARD_FIELDS)}")
    missing = [name for name in CARD_FIELDS if not str(raw.get(name, "")).strip()]
    if missing:
        raise UserError(f"the model card lacks {', '.join(missing)}: give each as --card {missing[0]}=...")
    answer = str(raw["test_used_for_selection"]).lower()
    if answer not in YES + NO:
        raise UserError(f"--card test_used_for_selection={raw['test_used_for_selection']}: answer yes or no")
    name = str(raw["name"])
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise UserError(f"--card name={name[:40]!r}: use 1 to 64 letters, digits, '.', '_' or '-' (it names the leaderboard entry)")
    return {"name": name, "url": str(raw["url"]), "training_data": str(raw["training_data"]), "test_used_for_selection": answer in YES}


def model_options(raw: dict[str, str]) -> dict[str, object]:
    """--model-opt values as the numbers and booleans they spell, else as text."""
    def value(text: str) -> object:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    return {key: value(text) for key, text in raw.items()}


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "file" or "timm"
    name: str
    text: str | None
    options: dict[str, object]

    def describe(self) -> dict:
        digest = hashlib.sha256(self.text.encode()).hexdigest() if self.text is not None else None
        return {"kind": self.kind, "name": self.name, "sha256": digest, "text": self.text, "options": dict(self.options)}


def model_spec(model_file: str, options: dict[str, object]) -> ModelSpec:
    if model_file.startswith(TIMM_PREFIX):
        name = model_file[len(TIMM_PREFIX):]
        if not name:
            raise UserError("--model-file timm:NAME needs a timm model name, e.g. timm:resnet18")
        return ModelSpec("timm", name, None, options)
    path = Path(model_file)
    if not path.is_file():
        raise UserError(f"--model-file {model_file} does not exist; give a Python file that defines build_model, or timm:NAME")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--model-file {model_file} cannot be read as UTF-8 text ({error})") from None
    return ModelSpec("file", path.name, text, options)


def build_network(spec: ModelSpec, num_classes: int, image_shape: tuple[int, int, int]):
    """The network the spec describes; a model file runs from its recorded text."""
    if spec.kind == "timm":
        import timm

        try:
            return timm.create_model(spec.name, pretrained=False, num_classes=num_classes, in_chans=image_shape[0], **spec.options)
        except Exception as error:  # timm's own message names the problem
            raise UserError(f"timm:{spec.name}: {type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    module_name = "tailbench_model_file_" + hashlib.sha256(spec.text.encode()).hexdigest()[:16]
    module = type(sys)(module_name)
    module.__file__ = spec.name
    try:
        exec(compile(spec.text, spec.name, "exec"), module.__dict__)  # the user's own model code, by their request
    except Exception as error:
        raise UserError(f"--model-file {spec.name} fails to import: {type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    build = module.__dict__.get("build_model")
    if not callable(build):
        raise UserError(f"--model-file {spec.name} defines no build_model(num_classes, image_shape, **options)")
    try:
        network = build(num_classes, image_shape, **spec.options)
    except Exception as error:
        raise UserError(f"--model-file {spec.name}: build_model failed: {type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    import torch

    if not isinstance(network, torch.nn.Module):
        raise UserError(f"--model-file {spec.name}: build_model returned {type(network).__name__}, not a torch.nn.Module")
    return network


def load_state_dict(path: Path) -> dict:
    """The checkpoint's tensors (weights_only: no code runs); a checkpoint that is not one is one line."""
    import torch

    if not path.is_file():
        raise UserError(f"--checkpoint {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"--checkpoint {path} holds pickled objects or code, which tailbench never loads; "
                        "save the weights alone: torch.save(model.state_dict(), path)") from None
    except Exception as error:
        raise UserError(f"--checkpoint {path} is not a PyTorch checkpoint ({type(error).__name__}: {' '.join(str(error).split())[:120]})") from None
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UserError(f"--checkpoint {path} is not a state dict (a dict of tensors, or one under 'state_dict' or 'model')")
    return loaded


def load_weights(network, state: dict, path: Path) -> None:
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        said = (f"lacks {len(missing)} of the model's tensors (first: {missing[0]})" if missing else "") + \
               ("; " if missing and unexpected else "") + \
               (f"has {len(unexpected)} the model does not (first: {unexpected[0]})" if unexpected else "")
        raise UserError(f"--checkpoint {path} does not fit the model: it {said}")
    for key, tensor in own.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise UserError(f"--checkpoint {path}: {key} has shape {tuple(state[key].shape)}; the model's is {tuple(tensor.shape)} "
                            "(a different number of classes or channels?)")
    network.load_state_dict(state, strict=True)


def evaluate_outside(dataset: str, model_file: str, checkpoint: Path, card: dict, *, model_options: dict[str, object],
                     seed: int, device: str, out: Path, data_dir: Path | None, recipe: str | None,
                     allow_unverified_data: bool, force: bool) -> Path:
    """Evaluate the checkpoint and write its record; returns the record's folder."""
    from tailbench import api
    from tailbench.benchmarks import provenance
    from tailbench.benchmarks.runner import build_record, dataset_record
    from tailbench.devices import device_name, resolve_device
    from tailbench.results import SCHEMA_VERSION
    from tailbench.results.record_origins import OUTSIDE_PREFIX
    from tailbench.results.store import PER_IMAGE, is_complete, json_safe, run_dir, write_run
    from tailbench.storage.writable import check_writable

    spec = model_spec(model_file, model_options)
    bench = api.load_benchmark(dataset, data_dir, recipe=recipe, allow_unverified_data=allow_unverified_data)
    entry = OUTSIDE_PREFIX + str(card["name"])
    directory = run_dir(out, bench.name, entry, seed)
    if is_complete(directory) and not force:
        raise UserError(f"{directory} already holds a record; pass --force to evaluate again, or another --card name")
    check_writable(directory, "--out")
    network = build_network(spec, bench.num_classes, bench.image_shape)
    load_weights(network, load_state_dict(checkpoint), checkpoint)  # says so when the file is missing or no state dict
    data = checkpoint.read_bytes()
    started = datetime.now(timezone.utc)
    result = api.evaluate(network, bench, seed=seed, device=device)
    target = resolve_device(device)
    data_record = bench.data
    record = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": bench.name,
        "dataset": dataset_record(data_record),
        "method": {"spec": entry, "parts": [], "hparams": {}, "changed": {}},
        "seed": seed,
        "recipe": bench.recipe.to_json(),
        "summary": result.summary,
        "history": [],
        "provenance": {
            "git": provenance.git_commit(), "code_sha256": provenance.code_digest(),
            "packages": provenance.package_versions(), "machine": provenance.machine(),
            "device": device_name(target), "device_type": target.type, "runtime": result.runtime,
            "started": started, "finished": datetime.now(timezone.utc),
            "wall_seconds": (datetime.now(timezone.utc) - started).total_seconds(),
        },
        "per_image": {"file": PER_IMAGE, "bytes": len(result.per_image), "sha256": hashlib.sha256(result.per_image).hexdigest(),
                      "rows": len(data_record.test)},
        "outside": {
            "card": card,
            "checkpoint": {"file": checkpoint.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
            "model": spec.describe(),
            "parameters": sum(p.numel() for p in network.parameters()),
        },
    }
    typed = build_record(json_safe(record))
    write_run(directory, typed.to_json(), result.per_class.to_dict("records"), {PER_IMAGE: result.per_image})
    return directory


def reevaluate(stored, checkpoint: Path | None, device: str | None, data_dir: Path | None) -> bool:
    """`tailbench rerun` of an outside record: its training cannot be rerun; given the checkpoint
    (checked against the recorded sha256), the evaluation is, from the recorded model source, and
    per_class.csv and per_image.csv.gz are compared byte for byte."""
    from tailbench import api
    from tailbench.results.store import PER_CLASS, PER_IMAGE, csv_bytes

    outside = stored.record.outside
    describe = stored.record.describe()
    if checkpoint is None:
        raise UserError(f"{describe} was trained outside tailbench, so its training cannot be rerun; pass --checkpoint FILE "
                        f"(sha256 {outside.checkpoint.sha256[:12]}…) to re-evaluate it")
    if not checkpoint.is_file():
        raise UserError(f"--checkpoint {checkpoint} does not exist")
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    if digest != outside.checkpoint.sha256:
        raise UserError(f"--checkpoint {checkpoint} has sha256 {digest[:12]}…; the record's checkpoint is {outside.checkpoint.sha256[:12]}…")
    source = outside.model
    spec = ModelSpec(source.kind, source.name, source.text, dict(source.options))
    record = stored.record
    bench = api.load_benchmark(record.dataset.name, data_dir, recipe=record.recipe.name, options={k: str(v) for k, v in record.dataset.options.items()})
    if bench.name != record.benchmark:
        raise UserError(f"the record's benchmark {record.benchmark!r} is rebuilt here as {bench.name!r}; it cannot be re-evaluated")
    network = build_network(spec, bench.num_classes, bench.image_shape)
    load_weights(network, load_state_dict(checkpoint), checkpoint)
    print(f"{describe}: trained outside tailbench; training cannot be rerun, re-evaluating its checkpoint")
    result = api.evaluate(network, bench, seed=record.seed, device=device or record.provenance.device_type)
    same_table = csv_bytes(result.per_class.to_dict("records")) == (stored.directory / PER_CLASS).read_bytes()
    same_images = result.per_image == (stored.directory / PER_IMAGE).read_bytes()
    same_summary = result.summary == stored.summary
    print(f"{PER_CLASS}: {'identical' if same_table else 'differs'}")
    print(f"{PER_IMAGE}: {'identical' if same_images else 'differs'}")
    print(f"summary: {'identical' if same_summary else 'differs'}")
    return same_table and same_images and same_summary
