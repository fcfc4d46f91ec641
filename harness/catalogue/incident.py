"""Incident files: a scenario as declarative TOML, to reproduce, replay and shrink.

Every failing run writes its exact schedule as one of these next to its report; ``faultline
reproduce FILE`` runs one; ``faultline shrink FILE`` cuts it down. Errors name the file, the
line and the field, and are harness errors (exit 2).

    [incident]                      # name, description, incident (short name), sink
    [workload]                      # records, profile, size, seed, chunk
    [exporter_env]                  # extra environment for the exporter
    [expect]                        # required: at least one expectation
    [[steps]]                       # phase, at, duration, and one of fault = ... / action = ...
                                    # (action = "load" runs Locust for its duration)
    [reproduction]                  # optional: reproduced = "5/5", violates, faultline_version,
                                    # target, servers, seed, measured_at, defect
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.catalogue.scenario import (
    STEPS_MAX,
    Expect,
    Reproduction,
    Scenario,
    ScenarioError,
    Step,
    Workload,
    error_field,
    explain,
    kind_of,
    registered,
)
from harness.checks import CheckKindError, verify_custom
from harness.errors import HarnessError
from harness.model.changes import ChangeMix
from harness.model.tomlfile import Locator as _Locator
from harness.model.tomlfile import parse, read_text


def file_key(role: str) -> str:
    """Faults are written ``fault = "..."``; actions and loads ``action = "..."``."""
    return "fault" if role == "fault" else "action"


STEP_KEYS = {"phase", "at", "duration", "fault", "action"}



class IncidentError(HarnessError):
    """An incident file is malformed; the message names file, line and field."""


class _ReproductionTable(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    reproduced: Annotated[str, Field(pattern=r"^\d{1,5}/\d{1,5}$")]
    violates: list[str] = []
    faultline_version: str = ""
    target: str = ""
    servers: dict[str, str] = {}
    seed: int = 0
    measured_at: str = ""
    defect: str | None = None


class _FileShape(BaseModel):
    """The tables an incident file has, and their types (each table's fields are the models')."""

    model_config = ConfigDict(strict=True, extra="forbid")
    incident: dict[str, Any]
    expect: Annotated[dict[str, Any], Field(min_length=1)]
    workload: dict[str, Any] = {}
    exporter_env: dict[str, str] = {}
    knobs: dict[str, str] = {}
    steps: Annotated[list[dict[str, Any]], Field(max_length=STEPS_MAX)] = []
    reproduction: _ReproductionTable | None = None


def load(path: Path) -> Scenario:
    """Parse and validate an incident file into a Scenario; every refusal names file:line:field."""
    text = read_text(path, "incident file", IncidentError)
    data = parse(text, path, "incident file", IncidentError)
    where = _Locator(text)

    def fail(message: str, line: int | None) -> IncidentError:
        return IncidentError(f"{path}:{line or '?'}: {message}")

    try:
        shape = _FileShape.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        table, key = str(error["loc"][0]), ".".join(str(x) for x in error["loc"][1:])
        line = (where.key(key.split(".")[0], table=table) if key else None) or where.table(table) or where.key(table)
        if error["type"] == "missing" and table == "expect":
            raise fail("missing expectations: add an [expect] table saying what must hold (e.g. no_loss = true)",
                       line) from exc
        raise fail(f"[{table}]{'.' + key if key else ''}: {error['msg']} (got {repr(error.get('input'))[:80]})",
                   line) from exc

    def build(cls: Any, values: dict[str, Any], table: str) -> Any:
        try:
            return cls(**values)
        except ValidationError as exc:
            raise fail(f"[{table}] {explain(exc)}", where.key(error_field(exc).split(".")[0], table=table)
                       or where.table(table)) from exc

    expect = build(Expect, shape.expect, "expect")
    try:
        verify_custom(expect, "[expect]")
    except CheckKindError as exc:
        raise fail(str(exc), where.table("expect")) from exc
    workload_values = dict(shape.workload)
    if isinstance(workload_values.get("changes"), dict):  # [workload.changes], or changes = {...}
        changes = dict(workload_values["changes"])
        if isinstance(changes.get("transaction_size"), list):
            changes["transaction_size"] = tuple(changes["transaction_size"])
        workload_values["changes"] = build(ChangeMix, changes, "workload.changes")
    workload = build(Workload, workload_values, "workload")
    steps = [_step(n, raw, where, fail) for n, raw in enumerate(shape.steps)]
    head = dict(shape.incident)
    if isinstance(head.get("catches"), list):
        head["catches"] = tuple(head["catches"])  # TOML arrays are lists; the model keeps tuples
    try:
        return build(Scenario, {**head, "workload": workload, "steps": tuple(steps), "expect": expect,
                                "exporter_env": shape.exporter_env, "knobs": shape.knobs,
                                "reproduction": _reproduction(shape.reproduction, where, fail)},
                     "incident").validate()
    except ScenarioError as exc:
        line = None
        if exc.field_name and exc.field_name.startswith("changes."):
            line = where.key(exc.field_name.split(".", 1)[1], table="workload.changes") or \
                where.key("changes", table="workload")
        elif exc.field_name:
            line = where.key(exc.field_name, step=exc.step) if exc.step is not None else \
                where.key(exc.field_name, table="knobs")
        raise IncidentError(f"{path}:{line or '?'}: {exc}") from exc


def _step(n: int, raw: dict[str, Any], where: _Locator, fail: Any) -> Step:
    """One [[steps]] entry: its kind (fault = ... or action = ...) and the fields that kind owns."""
    line = where.step_lines[n] if n < len(where.step_lines) else None

    def step_fail(message: str, key: str | None = None) -> IncidentError:
        return fail(f"step {n + 1}: {message}", (where.key(key, step=n) if key else None) or line)

    kind_key = "fault" if "fault" in raw else "action" if "action" in raw else None
    if kind_key is None:
        raise step_fail("needs `fault = ...` or `action = ...`")
    if "fault" in raw and "action" in raw:  # one would be dropped without a word
        raise step_fail("has both `fault = ...` and `action = ...`: one step is one of them", "action")
    kind = raw[kind_key]
    table = {name: cls for name, cls in registered().items() if file_key(cls.role) == kind_key}
    if not isinstance(kind, str) or kind not in table:
        raise step_fail(f"unknown {kind_key} {kind!r}; known: {', '.join(sorted(table))}", kind_key)
    params = {k: v for k, v in raw.items() if k not in STEP_KEYS}
    try:
        do = table[kind](**params)
        return Step(phase=raw.get("phase", "during"), do=do, at=raw.get("at", 0.0), duration=raw.get("duration"))
    except ValidationError as exc:
        raise step_fail(explain(exc), error_field(exc).split(".")[0]) from exc


def _reproduction(table: _ReproductionTable | None, where: _Locator, fail: Any) -> Reproduction | None:
    """The [reproduction] table: what the incident was confirmed with (its rate, versions, seed)."""
    if table is None:
        return None
    failed, runs = (int(x) for x in table.reproduced.split("/"))
    try:
        return Reproduction(failed, runs, tuple(table.violates), table.faultline_version, table.target,
                            dict(table.servers), table.seed, table.measured_at, table.defect).validate()
    except (ValidationError, ScenarioError) as exc:
        detail = explain(exc) if isinstance(exc, ValidationError) else str(exc)
        raise fail(f"[reproduction] {detail}", where.key("reproduced", table="reproduction")) from exc


# -- writing ----------------------------------------------------------------------------------------
def _table(values: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: a value left at None is left out (None is then its default); tuples are arrays."""
    return {k: _table(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v
            for k, v in values.items() if v is not None}


def document(scenario: Scenario) -> dict[str, Any]:
    """The incident file's tables, in the order a person reads them."""
    head: dict[str, Any] = {"name": scenario.name, "description": scenario.description, "sink": scenario.sink,
                            "during_s": scenario.during_s, "incident": scenario.incident,
                            "catches": list(scenario.catches) or None,
                            "allow_trivial": scenario.allow_trivial or None}
    doc: dict[str, Any] = {"incident": _table(head), "workload": _table(asdict(scenario.workload))}
    if scenario.knobs:
        doc["knobs"] = dict(scenario.knobs)
    if scenario.exporter_env:
        doc["exporter_env"] = dict(scenario.exporter_env)
    doc["expect"] = _table(asdict(scenario.expect))  # custom = {} stays: an empty inline table
    if scenario.reproduction is not None:
        doc["reproduction"] = _reproduction_fields(scenario.reproduction)
    if scenario.steps:
        doc["steps"] = [_table({"phase": step.phase, "at": step.at, "duration": step.duration,
                                file_key(type(step.do).role): kind_of(step.do), **step.do.parameters()})
                        for step in scenario.steps]
    return doc


def dumps(scenario: Scenario, comment: str = "") -> str:
    """The scenario as an incident file, written by a TOML library (tomlkit: escaped strings,
    quoted keys, and every step its own ``[[steps]]`` table, however short, so that a person
    reads them one by one and a refusal names the step's line)."""
    doc = tomlkit.document()
    for line in comment.splitlines():
        doc.add(tomlkit.comment(line))
    if comment:
        doc.add(tomlkit.nl())
    try:
        for name, table in document(scenario).items():
            if name == "steps":
                steps = tomlkit.aot()
                for step in table:
                    steps.append(_toml_table(step))
                doc.add("steps", steps)
            else:
                doc.add(name, _toml_table(table))
        return tomlkit.dumps(doc)
    except (TypeError, ValueError) as exc:
        raise IncidentError(f"scenario {scenario.name!r} cannot be written as an incident file: {exc}") from exc


def _toml_table(values: dict[str, Any]) -> Any:
    """A table whose own tables are written inline (``attributes = {latency = 100}``)."""
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, _inline(value) if isinstance(value, dict) else value)
    return table


def _inline(values: dict[str, Any]) -> Any:
    table = tomlkit.inline_table()
    table.update({k: _inline(v) if isinstance(v, dict) else v for k, v in values.items()})
    return table


def _reproduction_fields(rep: Reproduction) -> dict[str, Any]:
    values: dict[str, Any] = {"reproduced": rep.rate, "violates": list(rep.violates),
                              "faultline_version": rep.faultline_version, "target": rep.target, "seed": rep.seed,
                              "measured_at": rep.measured_at}
    if rep.defect:
        values["defect"] = rep.defect
    values["servers"] = dict(rep.servers)
    return values


def write(scenario: Scenario, path: Path, comment: str = "") -> Path:
    """Write to a temporary name beside ``path``, read it back and validate it, then rename: a
    user's file is never replaced by one that does not load (a replay file that cannot be
    replayed is worthless, and the one it replaced may have been the only copy)."""
    text = dumps(scenario, comment)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        try:
            load(temporary)
        except IncidentError as exc:
            raise IncidentError(f"{path}: not written, it would not read back: {exc}") from exc
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
