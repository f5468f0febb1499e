"""The method registry, spec parsing (``loss[+rule][+augmentation...]``) and hyper-parameters."""

from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, TypeVar

from tailbench.errors import UserError
from tailbench.methods.base import KINDS, MethodPart
from tailbench.options import coerce

P = TypeVar("P", bound=type)
_PARTS: dict[str, type[MethodPart]] = {}


def register_method(name: str) -> Callable[[P], P]:
    def decorator(cls: P) -> P:
        if not name or "+" in name or "." in name:
            raise ValueError(f"method part name {name!r} must be non-empty without '+' or '.'")
        if name in _PARTS and _PARTS[name] is not cls:
            raise ValueError(f"method part {name!r} registered twice")
        if cls.kind not in KINDS:  # type: ignore[attr-defined]
            raise ValueError(f"method part {name!r} has kind {cls.kind!r}; expected one of {KINDS}")  # type: ignore[attr-defined]
        cls.name = name  # type: ignore[attr-defined]
        _PARTS[name] = cls  # type: ignore[assignment]
        return cls

    return decorator


def method_parts() -> dict[str, type[MethodPart]]:
    load_entry_points()
    return dict(sorted(_PARTS.items()))


def parse_spec(spec: str) -> list[type[MethodPart]]:
    load_entry_points()
    names = [part.strip() for part in spec.split("+")]
    if not spec or any(not n for n in names):
        raise UserError(f"method spec {spec!r} is malformed; write parts joined by '+', e.g. ce+drs")
    unknown = [n for n in names if n not in _PARTS]
    if unknown:
        raise UserError(f"unknown method part {unknown[0]!r} in {spec!r}; run `tailbench list methods` to see the parts")
    parts = [_PARTS[n] for n in names]
    if len(set(names)) != len(names):
        raise UserError(f"method spec {spec!r} repeats a part")
    if parts[0].kind != "loss":
        raise UserError(f"method spec {spec!r} must start with a loss (e.g. ce+{spec}); specs read loss[+rule][+augmentation]")
    kinds = [p.kind for p in parts]
    if kinds.count("loss") > 1 or kinds.count("rule") > 1:
        clash = "losses" if kinds.count("loss") > 1 else "rules"
        raise UserError(f"method spec {spec!r} combines two {clash}; use at most one loss and one rule")
    if kinds != sorted(kinds, key=KINDS.index):
        raise UserError(f"method spec {spec!r} is out of order; write loss[+rule][+augmentation...]")
    if sum(p.overrides_predict for p in parts) > 1:
        raise UserError(f"method spec {spec!r} combines two parts that each define prediction")
    return parts


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
    return resolved


def changed_hparams(parts: list[type[MethodPart]], resolved: dict[str, dict[str, object]]) -> dict[str, object]:
    """`part.key` -> value for every resolved hyper-parameter that differs from the part's default."""
    return {
        f"{p.name}.{key}": value
        for p in parts for key, value in resolved[p.name].items()
        if value != p.hparams.get(key)
    }


def load_method_file(path: str) -> None:
    """Import a submitter's method file so that its @register_method classes join the registry."""
    file = Path(path)
    if not file.is_file() or file.suffix != ".py":
        raise UserError(f"--method-file {path}: no such Python file")
    module_name = f"tailbench_user_method_{file.stem}"
    loaded = sys.modules.get(module_name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == file.resolve():
        return  # already imported in this process (e.g. run, then rerun): its parts are registered
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as error:
        del sys.modules[module_name]
        raise UserError(f"--method-file {path} failed to import: {type(error).__name__}: {error}") from None


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
