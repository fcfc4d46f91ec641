"""How the target's log is read, as the target definition's ``[log]`` says.

The bundled exporter logs one JSON object a line (``level``, ``msg``, ``stage``, ...). A JVM
service such as a Kafka Connect worker logs through log4j's pattern layout (``[time] WARN message
(logger)``, then a stack trace's lines). Explore's signatures and the report's excerpt need the
warnings and errors of either, as records of one shape: ``level`` (debug, info, warning, error,
critical), ``msg``, and ``logger`` or ``stage`` where the log names one. A pattern-format line that
does not match starts no record: it continues the one before (a stack trace), kept as ``trace``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

_STRICT = ConfigDict(strict=True, extra="forbid")
Level = Literal["debug", "info", "warning", "error", "critical"]
# log4j's and Python's level names, for a pattern log that names them its own way.
DEFAULT_LEVELS: dict[str, Level] = {
    "TRACE": "debug", "DEBUG": "debug", "INFO": "info", "WARN": "warning", "WARNING": "warning",
    "ERROR": "error", "FATAL": "critical", "CRITICAL": "critical",
}
TRACE_LINES = 5  # of a stack trace, kept with its record: the exception and where it was thrown


@dataclass(frozen=True, config=_STRICT)
class LogFormat:
    format: Literal["json", "pattern"] = "json"
    # For "pattern": a regular expression with the named groups `level` and `msg` (and optionally
    # `logger`), matched against each line from its start.
    pattern: Annotated[str, Field(max_length=1000)] = ""
    levels: dict[Annotated[str, Field(min_length=1, max_length=40)], Level] = \
        Field(default_factory=lambda: dict(DEFAULT_LEVELS))

    @field_validator("pattern")
    @classmethod
    def _compiles_with_groups(cls, value: str) -> str:
        if not value:
            return value
        try:
            groups = re.compile(value).groupindex
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        nested = _nested_repeat(value)
        if nested:
            raise ValueError(f"{nested} can backtrack catastrophically (hours on one line): "
                             "repeat a group without a repeat inside it")
        missing = sorted({"level", "msg"} - set(groups))
        if missing:
            raise ValueError(f"needs the named group(s) {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _pattern_given(self) -> LogFormat:
        if self.format == "pattern" and not self.pattern:
            raise ValueError("format 'pattern' needs a pattern")
        return self

    def records(self, text: str) -> list[dict[str, Any]]:
        return _json_records(text) if self.format == "json" else self._pattern_records(text)

    def _pattern_records(self, text: str) -> list[dict[str, Any]]:
        line_pattern = re.compile(self.pattern)
        records: list[dict[str, Any]] = []
        for line in text.splitlines():
            match = line_pattern.match(line)
            if match is None:
                if records and line.strip() and len(records[-1].setdefault("trace", [])) < TRACE_LINES:
                    records[-1]["trace"].append(line.strip()[:300])
                continue
            fields = match.groupdict()
            record = {"level": self.levels.get(fields["level"], "unparsed"), "msg": fields["msg"]}
            if fields.get("logger"):
                record["logger"] = fields["logger"]
            records.append(record)
        return records


def _json_records(text: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append({"level": "unparsed", "msg": line})
    return records


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _nested_repeat(pattern: str) -> str | None:
    """An unbounded repeat inside another unbounded repeat (``(a+)+``, ``(a*|b)*``, ``(.*,)*``):
    the shape that makes a backtracking engine take exponential time on a line that almost
    matches. Read from the parsed pattern, not the text (a class such as ``[+*]`` is no repeat)."""
    import re._parser as parser  # the standard library's own parser: what re.compile reads

    def walk(items: Any, inside: bool) -> str | None:
        for op, arg in items:
            name = str(op)
            if name in _REPEATS:
                low, high, sub = arg
                unbounded = high is parser.MAXREPEAT or high > 1000
                if unbounded and inside:
                    return "a repeat inside a repeat"
                found = walk(sub, inside or unbounded)
            elif name == "SUBPATTERN":
                found = walk(arg[-1], inside)
            elif name == "BRANCH":
                found = next((f for branch in arg[1] if (f := walk(branch, inside))), None)
            elif name in ("ASSERT", "ASSERT_NOT"):
                found = walk(arg[1], inside)
            else:
                found = None
            if found:
                return found
        return None

    return walk(parser.parse(pattern), False)
