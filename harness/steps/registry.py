"""The step-kind registry (see the package's docstring): kinds register with ``@step_kind``."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from harness.errors import HarnessError
from harness.model.plugins import import_module, load_entry_points
from harness.steps.base import StepKind

__all__ = ["StepKindError", "by_name", "kind_of", "load_modules", "load_plugins", "registered", "step_kind"]

ENTRY_POINT_GROUP = "faultline.steps"
K = TypeVar("K")
_REGISTRY: dict[str, type[StepKind]] = {}


class StepKindError(HarnessError):
    """A step kind cannot be registered or found (a clash of names, a module that fails to import)."""


def step_kind(cls: K) -> K:
    """Register a step kind class under its ``kind_name`` (the name incident files use)."""
    if not (isinstance(cls, type) and issubclass(cls, StepKind)) or not cls.kind_name:
        raise StepKindError(f"{cls!r}: a step kind subclasses StepKind and names its kind_name")
    if not dataclasses.is_dataclass(cls):
        raise StepKindError(f"{cls.__name__}: a step kind is a (pydantic) dataclass: its fields are its parameters")
    if not cls.kind_name.replace("_", "").isalnum() or cls.role not in ("fault", "action", "load"):
        raise StepKindError(f"{cls.__name__}: kind must be letters, digits and underscores and role "
                            f"fault, action or load, not {cls.kind_name!r}/{cls.role!r}")
    other = _REGISTRY.get(cls.kind_name)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise StepKindError(f"step kind {cls.kind_name!r} of {cls.__module__}.{cls.__name__} clashes with "
                            f"{other.__module__}.{other.__name__}")
    _REGISTRY[cls.kind_name] = cls
    return cls


def load_plugins() -> None:
    """Import every module named in the ``faultline.steps`` entry-point group (once)."""
    load_entry_points(ENTRY_POINT_GROUP, StepKindError)


def load_modules(modules: list[str] | tuple[str, ...], where: str) -> None:
    """Import the modules a target definition names (``steps = [...]``), registering their kinds."""
    for name in modules:
        import_module(name, f"{where}: step module", StepKindError)


def registered() -> dict[str, type[StepKind]]:
    load_plugins()
    return dict(_REGISTRY)


def by_name(name: str) -> type[StepKind] | None:
    return registered().get(name)


def kind_of(step: object) -> str:
    """The incident-file name of a step's kind (it must be registered)."""
    kind = getattr(type(step), "kind_name", "")
    if not kind or _REGISTRY.get(kind) is not type(step):
        raise StepKindError(f"{type(step).__name__} is not a registered step kind")
    return str(kind)
