"""Finding scenarios: every ``scenarios/<name>.py`` that defines ``SCENARIO``."""

from __future__ import annotations

import ast
import importlib.util
import traceback
from pathlib import Path

from pydantic import ValidationError

from harness.catalogue.scenario import Scenario, ScenarioError, explain
from harness.checks import CheckKindError, verify_custom
from harness.paths import project_root


def scenarios_dir() -> Path:
    return project_root() / "scenarios"


def load_file(path: Path) -> Scenario:
    spec = importlib.util.spec_from_file_location(f"faultline_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ValidationError as exc:
        # A field refused by the model: name the line of the scenario file that made it.
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        raise ScenarioError(f"{path}:{lines[-1] if lines else '?'}: {explain(exc)}") from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: a scenario file never ends the run with exit 0
        raise ScenarioError(f"{path}: failed to import: {exc.__class__.__name__}: {exc}") from exc
    scenario = getattr(module, "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise ScenarioError(f"{path}: defines no SCENARIO = Scenario(...)")
    if scenario.name != path.stem:
        raise ScenarioError(f"{path}: SCENARIO.name is {scenario.name!r}; it must match the file name {path.stem!r}")
    try:
        verify_custom(scenario.expect, f"{path}: SCENARIO")
    except CheckKindError as exc:
        raise ScenarioError(str(exc)) from exc
    try:
        return scenario.validate()
    except ScenarioError as exc:
        line = _step_line(path, exc.step) if exc.step is not None else None
        raise ScenarioError(f"{path}:{line or '?'}: {exc}", exc.field_name, exc.step) from exc


def _step_line(path: Path, index: int) -> int | None:
    """The line of the ``index``-th element of ``steps=(...)`` in a scenario file, when written so."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "steps" and isinstance(keyword.value, ast.Tuple | ast.List):
                    elements = keyword.value.elts
                    return elements[index].lineno if index < len(elements) else None
    return None


def discover(directory: Path | None = None) -> dict[str, Scenario]:
    directory = directory or scenarios_dir()
    found = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        scenario = load_file(path)
        found[scenario.name] = scenario
    return found


def select(names: list[str], directory: Path | None = None) -> list[Scenario]:
    available = discover(directory)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ScenarioError(f"unknown scenario(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return [available[n] for n in names] if names else list(available.values())
