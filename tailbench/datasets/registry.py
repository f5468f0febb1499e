"""The dataset registry: ``@register_dataset("name")`` on a builder class."""

from __future__ import annotations

from typing import Callable, TypeVar

from tailbench.errors import UserError
from tailbench.options import coerce

T = TypeVar("T")
_DATASETS: dict[str, type] = {}


def register_dataset(name: str) -> Callable[[T], T]:
    def decorator(cls: T) -> T:
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        cls.name = name  # type: ignore[attr-defined]
        _DATASETS[name] = cls  # type: ignore[assignment]
        return cls

    return decorator


def dataset_names() -> list[str]:
    return sorted(_DATASETS)


def get_dataset(name: str, options: dict[str, str] | None = None):
    """An instance of the registered builder, with its options parsed and checked."""
    try:
        cls = _DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; run `tailbench list datasets` to see the registered ones") from None
    return cls(**parse_options(cls, options or {}))


def parse_options(cls, raw: dict[str, str]) -> dict[str, object]:
    """Options arrive as strings from the CLI; each builder declares their defaults (and so types)."""
    defaults: dict[str, object] = dict(getattr(cls, "options", {}))
    parsed: dict[str, object] = {}
    for key, value in raw.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise UserError(f"dataset {cls.name!r} has no option {key!r}; its options: {known}")
        parsed[key] = coerce(f"dataset option {key} for {cls.name!r}", value, defaults[key])
    return parsed
