"""The method registry, spec parsing (``loss[+rule][+augmentation...][+stage]``), hyper-parameters, and
where each part's code came from (built in, a --method-file, or an installed package)."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, TypeVar

from tailbench.errors import UserError
from tailbench.methods.base import KINDS, MethodPart
from tailbench.options import coerce

P = TypeVar("P", bound=type)
_PARTS: dict[str, type[MethodPart]] = {}
USER_MODULE_PREFIX = "tailbench_user_method_"


# A part's name is a spec token (joined by '+', hyper-parameters as part.key, entries as
# @part.key=value) and part of a run folder's name: letters, digits, '_' and '-', starting with a letter.
PART_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


def register_method(name: str) -> Callable[[P], P]:
    """Register a MethodPart subclass under `name`; a bad name, a clash or a bad kind is one line
    (a UserError) when the defining file is imported, not later when a spec is parsed."""

    def decorator(cls: P) -> P:
        if not isinstance(name, str) or not PART_NAME.fullmatch(name):
            raise UserError(f"method part name {str(name)[:40]!r} cannot be a spec token or a folder name; use up to 40 letters, "
                            "digits, '_' or '-', starting with a letter (no '/', '<', '=', '+', '@', '.' or spaces)")
        if name in _PARTS and _PARTS[name] is not cls:
            held = _PARTS[name]
            if part_source(held).origin == "builtin":
                raise UserError(f"method part {name!r} is built in ({held.__module__}: {held.description or held.__name__}); "
                                f"rename yours, e.g. @register_method({('my_' + name)[:40]!r})")
            raise UserError(f"method part {name!r} is already registered by {held.__module__}; rename one of them")
        if getattr(cls, "kind", None) not in KINDS:
            raise UserError(f"method part {name!r} has kind {getattr(cls, 'kind', None)!r}; expected one of {', '.join(KINDS)}")
        cls.name = name  # type: ignore[attr-defined]
        _PARTS[name] = cls  # type: ignore[assignment]
        return cls

    return decorator


def method_parts() -> dict[str, type[MethodPart]]:
    load_entry_points()
    return dict(sorted(_PARTS.items()))


def _names(kind_or_flag: str) -> str:
    return ", ".join(n for n, p in sorted(_PARTS.items()) if p.kind == kind_or_flag or getattr(p, kind_or_flag, False) is True)


def parse_spec(spec: str) -> list[type[MethodPart]]:
    """The spec's part classes, or a one-line UserError saying what is wrong and how to write it."""
    load_entry_points()
    names = [part.strip() for part in spec.split("+")]
    if not spec or any(not n for n in names):
        raise UserError(f"method spec {spec!r} is malformed; write parts joined by '+', e.g. ce+drs")
    unknown = [n for n in names if n not in _PARTS]
    if unknown:
        raise UserError(
            f"unknown method part {unknown[0]!r} in {spec!r}; run `tailbench list methods` to see the parts, "
            f"and pass the file that defines a part of your own with --method-file FILE.py"
        )
    if len(set(names)) != len(names):
        raise UserError(f"method spec {spec!r} repeats a part")
    parts = [_PARTS[n] for n in names]
    kinds = [p.kind for p in parts]
    for kind, plural in (("loss", "losses"), ("rule", "rules"), ("stage", "second stages")):
        if kinds.count(kind) > 1:
            found = ", ".join(p.name for p in parts if p.kind == kind)
            raise UserError(f"method spec {spec!r} combines two {plural} ({found}); use one loss, at most one rule and at most one stage")
    ordered = sorted(parts, key=lambda p: KINDS.index(p.kind))  # stable: augmentations keep their order
    if "loss" not in kinds:
        raise UserError(f"method spec {spec!r} has no loss; it must start with one, e.g. {'+'.join(['ce'] + [p.name for p in ordered])} (losses: {_names('loss')})")
    if ordered != parts:
        raise UserError(f"method spec {spec!r} is out of order; write {'+'.join(p.name for p in ordered)} (loss[+rule][+augmentation...][+stage])")
    if sum(p.overrides_predict for p in parts) > 1:
        raise UserError(f"method spec {spec!r} combines two parts that each define prediction")
    _check_soft_targets(spec, parts)
    for part in parts:
        part.check_spec(spec, parts)
    return parts


def _check_soft_targets(spec: str, parts: list[type[MethodPart]]) -> None:
    """A label-mixing augmentation hands [B, C] targets to the loss and to every augmentation
    after it: it must come last, alone, and with a loss that accepts soft targets."""
    mixers = [p for p in parts if p.mixes_labels]
    if not mixers:
        return
    if len(mixers) > 1:
        raise UserError(f"method spec {spec!r} combines {mixers[0].name} and {mixers[1].name}, which both mix labels; use one of them")
    mixer, augmentations = mixers[0], [p for p in parts if p.kind == "augmentation"]
    if augmentations[-1] is not mixer:
        fixed = "+".join(p.name for p in parts if p is not mixer) + f"+{mixer.name}"
        raise UserError(f"method spec {spec!r}: {mixer.name} mixes labels, so it must be the last augmentation; write {fixed}")
    if not parts[0].soft_targets:
        raise UserError(
            f"method spec {spec!r}: {mixer.name} makes soft (mixed) targets, which the loss {parts[0].name} does not accept; "
            f"use a loss that does ({_names('soft_targets')})"
        )


def resolve_hparams(parts: list[type[MethodPart]], overrides: dict[str, str]) -> dict[str, dict[str, object]]:
    """Defaults of every part with `part.key=value` overrides applied, typed like the defaults."""
    resolved = {p.name: dict(p.hparams) for p in parts}
    for dotted, raw in overrides.items():
        part, _, key = dotted.partition(".")
        if part not in resolved:
            raise UserError(f"--hp {dotted}={raw}: {part!r} is not a part of this method spec")
        if key not in resolved[part]:
            known = ", ".join(sorted(resolved[part])) or "none"
            raise UserError(f"--hp {dotted}={raw}: {part} has no hyper-parameter {key!r}; its hyper-parameters: {known}")
        resolved[part][key] = coerce(f"--hp {dotted}", raw, resolved[part][key])
    for cls in parts:
        cls.check_hparams(resolved[cls.name])
    return resolved


def changed_hparams(parts: list[type[MethodPart]], resolved: dict[str, dict[str, object]]) -> dict[str, object]:
    """`part.key` -> value for every resolved hyper-parameter that differs from the part's default."""
    return {
        f"{p.name}.{key}": value
        for p in parts for key, value in resolved[p.name].items()
        if value != p.hparams.get(key)
    }


@dataclass(frozen=True)
class PartSource:
    """Where a part's code came from: "builtin" (this tailbench), "file" (a --method-file) or
    "package" (an entry point or any other module); for the last two, the source file's name,
    sha256 and text, which go into every run record that uses the part."""

    origin: str
    file: str | None = None
    sha256: str | None = None
    text: str | None = None

    def to_record(self) -> dict[str, object]:
        if self.origin == "builtin":
            return {"origin": "builtin"}
        return {"origin": self.origin, "code": {"file": self.file, "sha256": self.sha256, "text": self.text}}


def code_source(origin: str, file: Path, data: bytes) -> PartSource:
    return PartSource(origin, file.name, hashlib.sha256(data).hexdigest(), data.decode("utf-8", errors="replace"))


_FILE_SOURCES: dict[str, PartSource] = {}  # module name -> the bytes it was executed from


def part_source(cls: type[MethodPart]) -> PartSource:
    """Where `cls` came from. A method file's text is the one it was executed from (read once)."""
    module = cls.__module__
    if module == "tailbench" or module.startswith("tailbench."):
        return PartSource("builtin")
    if module in _FILE_SOURCES:
        return _FILE_SOURCES[module]
    try:
        path = Path(inspect.getsourcefile(cls) or "")
        return code_source("package", path, path.read_bytes())
    except (OSError, TypeError) as error:
        raise UserError(f"method part {cls.name!r} comes from {module}, whose source file cannot be read for the run record ({error})") from None


def load_method_file(path: str) -> list[str]:
    """Import a submitter's method file so that its @register_method classes join the registry;
    return the names of the parts it defines. The file is read once: the bytes executed are the
    bytes a run record stores."""
    file = Path(path)
    if not file.is_file() or file.suffix != ".py":
        raise UserError(f"--method-file {path}: no such Python file")
    module_name = f"{USER_MODULE_PREFIX}{file.stem}"
    loaded = sys.modules.get(module_name)
    data = file.read_bytes()
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == file.resolve() and _FILE_SOURCES[module_name].sha256 == hashlib.sha256(data).hexdigest():
        return _parts_of(module_name)  # already imported in this process (e.g. run, then rerun)
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    before = dict(_PARTS)
    for name in _parts_of(module_name):  # a changed file replaces the parts it registered before
        del _PARTS[name]
    sys.modules[module_name] = module
    try:
        exec(compile(data, str(file), "exec"), module.__dict__)
    except Exception as error:
        del sys.modules[module_name]
        _PARTS.clear()
        _PARTS.update(before)
        if isinstance(error, UserError):  # a part defined wrongly: register_method's own line
            raise UserError(f"--method-file {path}: {error}") from None
        raise UserError(f"--method-file {path} failed to import: {type(error).__name__}: {' '.join(str(error).split())}") from None
    _FILE_SOURCES[module_name] = code_source("file", file, data)
    return _parts_of(module_name)


def _parts_of(module_name: str) -> list[str]:
    return sorted(name for name, cls in _PARTS.items() if cls.__module__ == module_name)


ENTRY_POINT_GROUP = "tailbench.methods"
_entry_points_loaded = False


def load_entry_points() -> None:
    """Import the method parts that installed packages declare under the `tailbench.methods` group.

    An entry point names a module (importing it runs its @register_method decorators) or a
    MethodPart subclass (registered under the entry point's name unless it registered itself).
    Loaded once, on the registry's first use; a broken one is a one-line UserError naming it.
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: (p.name, p.value)):
        try:
            loaded = point.load()
            if isinstance(loaded, type) and issubclass(loaded, MethodPart) and loaded not in _PARTS.values():
                register_method(point.name)(loaded)
        except Exception as error:
            raise UserError(
                f"entry point {point.name!r} = {point.value!r} (group {ENTRY_POINT_GROUP}) failed to load: "
                f"{type(error).__name__}: {' '.join(str(error).split())}; fix or uninstall the package that declares it"
            ) from None
    _entry_points_loaded = True
