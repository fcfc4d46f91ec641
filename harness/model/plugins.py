"""Loading a team's own modules (step kinds, checks): from an entry-point group, or by name from
a target definition. Whatever such a module raises on import, ``SystemExit`` included, is an
error naming the module: a user's module must never end a run with exit 0 and nothing judged."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from harness.errors import HarnessError
from harness.model.target import BUNDLED, TargetDefinition, TargetError
from harness.model.tomlfile import Locator, read_text

_loaded: set[str] = set()


def load_entry_points(group: str, error: type[HarnessError]) -> None:
    """Import every module the entry-point group names (once per group)."""
    if group in _loaded:
        return
    _loaded.add(group)
    for point in entry_points(group=group):
        _import(point.load, f"entry point {point.name} = {point.value} ({group})", error)


def import_module(name: str, where: str, error: type[HarnessError]) -> None:
    _import(lambda: importlib.import_module(name), f"{where}: module {name!r}", error)


def _import(load: Callable[[], object], what: str, error: type[HarnessError]) -> None:
    try:
        load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: a user's module never ends the run
        raise error(f"{what} failed to load: {exc.__class__.__name__}: {exc}") from exc


def load_target(path: Path | None = None) -> TargetDefinition:
    """A target definition (the bundled one by default), validated, with the team modules it
    names (``steps = [...]``: step kinds and checks) imported so that they are registered."""
    target = TargetDefinition.load(path or BUNDLED)
    text = read_text(path or BUNDLED, "target definition", TargetError)
    line = Locator(text).key("steps") or "?"
    for name in target.steps:
        import_module(name, f"{path or BUNDLED}:{line}: steps", TargetError)
    return target
