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

import re
import tomllib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.scenario import (
    Checkpoint,
    DiskFull,
    Expect,
    Export,
    ExportBurst,
    FreezeExporter,
    HeldTransaction,
    KillExporter,
    LinkDown,
    Load,
    Pause,
    ReadOnlyDir,
    Reproduction,
    RestartService,
    Resume,
    Scenario,
    ScenarioError,
    Step,
    Toxic,
    Workload,
    Write,
)
from harness.stack import LINKS, SERVICES

FAULTS = {"toxic": Toxic, "link_down": LinkDown, "kill_exporter": KillExporter, "freeze_exporter": FreezeExporter,
          "restart_service": RestartService, "disk_full": DiskFull, "read_only_dir": ReadOnlyDir,
          "held_transaction": HeldTransaction}
ACTIONS = {"pause": Pause, "resume": Resume, "export": Export, "write": Write, "export_burst": ExportBurst,
           "checkpoint": Checkpoint, "load": Load}
KINDS = {**FAULTS, **ACTIONS}
NAMES = {cls: name for name, cls in KINDS.items()}
STEP_KEYS = {"phase", "at", "duration", "fault", "action"}


class IncidentError(HarnessError):
    """An incident file is malformed; the message names file, line and field."""


class _Locator:
    """Line numbers for tables and keys (tomllib gives values, not positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.step_lines = [n for n, line in enumerate(self.lines, 1) if line.strip() == "[[steps]]"]

    def table(self, name: str) -> int | None:
        for n, line in enumerate(self.lines, 1):
            if line.strip() == f"[{name}]":
                return n
        return None

    def key(self, key: str, step: int | None = None, table: str | None = None) -> int | None:
        start, end = 1, len(self.lines)
        if step is not None and step < len(self.step_lines):
            start = self.step_lines[step]
            end = self.step_lines[step + 1] - 1 if step + 1 < len(self.step_lines) else len(self.lines)
        elif table is not None and (found := self.table(table)) is not None:
            start = found
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for n in range(start, end + 1):
            if n - 1 < len(self.lines) and pattern.match(self.lines[n - 1]):
                return n
        return start if step is not None else None


def load(path: Path) -> Scenario:
    """Parse and validate an incident file into a Scenario."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError as exc:
        raise IncidentError(f"{path}: no such incident file") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IncidentError(f"{path}: bad TOML syntax: {exc}") from exc
    where = _Locator(text)

    def fail(message: str, line: int | None) -> IncidentError:
        return IncidentError(f"{path}:{line or '?'}: {message}")

    unknown = set(data) - {"incident", "workload", "exporter_env", "expect", "steps", "reproduction"}
    if unknown:
        raise fail(f"unknown table(s) {sorted(unknown)}", where.table(sorted(unknown)[0]))
    head = data.get("incident", {})
    for key in ("name", "description"):
        if not head.get(key):
            raise fail(f"[incident] needs {key}", where.table("incident"))
    if "expect" not in data or not data["expect"]:
        raise fail("missing expectations: add an [expect] table saying what must hold (e.g. no_loss = true)",
                   where.table("expect"))
    expect = _build(Expect, data["expect"], "[expect]", lambda m: fail(m, where.table("expect")))
    workload = _build(Workload, data.get("workload", {}), "[workload]", lambda m: fail(m, where.table("workload")))
    steps = []
    windows: dict[str, list[tuple[float, float, int]]] = {}
    for n, raw in enumerate(data.get("steps", [])):
        line = where.step_lines[n] if n < len(where.step_lines) else None

        def step_fail(message: str, key: str | None = None, n: int = n, line: int | None = line) -> IncidentError:
            return fail(f"step {n + 1}: {message}", where.key(key, step=n) if key else line)

        kind_key = "fault" if "fault" in raw else "action" if "action" in raw else None
        if kind_key is None:
            raise step_fail("needs `fault = ...` or `action = ...`")
        kind = raw[kind_key]
        table = FAULTS if kind_key == "fault" else ACTIONS
        if kind not in table:
            raise step_fail(f"unknown {kind_key} {kind!r}; known: {', '.join(sorted(table))}", kind_key)
        extra = set(raw) - STEP_KEYS - _fields_of_kind(raw)
        if extra:
            raise step_fail(f"unknown field(s) {sorted(extra)} for {kind}", sorted(extra)[0])
        at, duration = raw.get("at", 0.0), raw.get("duration")
        if not isinstance(at, (int, float)) or at < 0:
            raise step_fail(f"`at` must be a number >= 0, not {at!r}", "at")
        if duration is not None and (not isinstance(duration, (int, float)) or duration <= 0):
            raise step_fail(f"`duration` must be a number > 0, not {duration!r}", "duration")
        params = {k: v for k, v in raw.items() if k not in STEP_KEYS}
        if "link" in params and params["link"] not in LINKS:
            raise step_fail(f"unknown target link {params['link']!r}; links: {', '.join(LINKS)}", "link")
        if "service" in params and params["service"] not in SERVICES:
            raise step_fail(f"unknown target service {params['service']!r}; services: {', '.join(SERVICES)}",
                            "service")
        do = _build(table[kind], params, f"step {n + 1}", lambda m, n=n: step_fail(m))
        if kind_key == "fault":
            # Two faults of the same kind on the same target at once are ambiguous (which one ends
            # when?); different toxics on one link are fine.
            target = ":".join([kind, *(str(params[k]) for k in ("link", "service", "directory", "type", "stream")
                                       if k in params)])
            end = at + (duration or float("inf"))
            for other_at, other_end, other_n in windows.get(target, []):
                if at < other_end and other_at < end:
                    raise step_fail(f"overlaps step {other_n + 1} on the same target ({target}); "
                                    "one fault of a kind per target at a time", "at")
            windows.setdefault(target, []).append((at, end, n))
        steps.append(Step(raw.get("phase", "during"), do, at=float(at),
                          duration=float(duration) if duration is not None else None))
    try:
        return Scenario(name=head["name"], description=head["description"], incident=head.get("incident"),
                        workload=workload, steps=tuple(steps), expect=expect,
                        exporter_env={str(k): str(v) for k, v in data.get("exporter_env", {}).items()},
                        sink=head.get("sink", "kafka"), during_s=float(head.get("during_s", 3.0)),
                        catches=tuple(head.get("catches", ())),
                        reproduction=_reproduction(data.get("reproduction"),
                                                   lambda m: fail(m, where.table("reproduction")))).validate()
    except ScenarioError as exc:
        raise IncidentError(f"{path}: {exc}") from exc


_REPRODUCED = re.compile(r"^(\d{1,5})/(\d{1,5})$")
_REPRODUCTION_TYPES: dict[str, type] = {"reproduced": str, "violates": list, "faultline_version": str, "target": str,
                                        "servers": dict, "seed": int, "measured_at": str, "defect": str}


def _reproduction(raw: Any, fail: Any) -> Reproduction | None:
    """The [reproduction] table: what the incident was confirmed with (its rate, versions, seed)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail("[reproduction] must be a table")
    for key, value in raw.items():
        kind = _REPRODUCTION_TYPES.get(key)
        if kind is None:
            raise fail(f"[reproduction]: unknown field '{key}'; known: {', '.join(sorted(_REPRODUCTION_TYPES))}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fail(f"[reproduction]: {key} must be a {kind.__name__}, not {value!r}")
    match = _REPRODUCED.match(raw.get("reproduced", ""))
    if match is None:
        raise fail(f"[reproduction]: reproduced must be 'failed/runs' such as \"5/5\", not {raw.get('reproduced')!r}")
    servers = raw.get("servers", {})
    if not all(isinstance(v, str) for v in servers.values()) or not all(isinstance(v, str)
                                                                        for v in raw.get("violates", [])):
        raise fail("[reproduction]: servers values and violates entries must be strings")
    try:
        return Reproduction(int(match[1]), int(match[2]), tuple(raw.get("violates", ())),
                            raw.get("faultline_version", ""), raw.get("target", ""), dict(servers),
                            raw.get("seed", 0), raw.get("measured_at", ""), raw.get("defect")).validate()
    except ScenarioError as exc:
        raise fail(f"[reproduction]: {exc}") from exc


def _fields_of_kind(raw: dict[str, Any]) -> set[str]:
    kind = KINDS.get(raw.get("fault") or raw.get("action") or "")
    return {f.name for f in fields(kind)} if kind else set()


def _build(cls: type, values: dict[str, Any], where: str, fail: Any) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise fail(f"{where}: unknown field '{sorted(unknown)[0]}'; known: {', '.join(sorted(known))}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise fail(f"{where}: {exc}") from exc


# -- writing ----------------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise HarnessError(f"cannot write {value!r} to an incident file")


def dumps(scenario: Scenario, comment: str = "") -> str:
    lines = [f"# {line}" for line in comment.splitlines()] + ([""] if comment else [])
    head = {"name": scenario.name, "description": scenario.description, "sink": scenario.sink,
            "during_s": scenario.during_s}
    if scenario.incident:
        head["incident"] = scenario.incident
    if scenario.catches:
        head["catches"] = list(scenario.catches)
    lines.append("[incident]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in head.items()]
    lines += ["", "[workload]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(scenario.workload).items()]
    if scenario.exporter_env:
        lines += ["", "[exporter_env]"] + [f"{k} = {_toml_value(v)}" for k, v in scenario.exporter_env.items()]
    lines += ["", "[expect]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(scenario.expect).items()]
    if scenario.reproduction is not None:
        lines += ["", "[reproduction]"] + [f"{k} = {_toml_value(v)}" for k, v in _reproduction_fields(
            scenario.reproduction).items()]
    for step in scenario.steps:
        kind = NAMES[type(step.do)]
        lines += ["", "[[steps]]", f'phase = "{step.phase}"', f"at = {step.at!r}"]
        if step.duration is not None:
            lines.append(f"duration = {step.duration!r}")
        lines.append(f"{'fault' if kind in FAULTS else 'action'} = \"{kind}\"")
        lines += [f"{k} = {_toml_value(v)}" for k, v in asdict(step.do).items()]
    return "\n".join(lines) + "\n"


def _reproduction_fields(rep: Reproduction) -> dict[str, Any]:
    values: dict[str, Any] = {"reproduced": rep.rate, "violates": list(rep.violates),
                              "faultline_version": rep.faultline_version, "target": rep.target, "seed": rep.seed,
                              "measured_at": rep.measured_at}
    if rep.defect:
        values["defect"] = rep.defect
    values["servers"] = dict(rep.servers)
    return values


def write(scenario: Scenario, path: Path, comment: str = "") -> Path:
    path.write_text(dumps(scenario, comment))
    load(path)  # what we write must read back: a replay file that cannot be replayed is worthless
    return path
