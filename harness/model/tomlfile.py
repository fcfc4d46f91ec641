"""Reading the harness's TOML inputs (target definitions, external backend settings) with errors
that name the file and say what it was meant to be."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.inputs import MAX_DEPTH, depth_problem, read_text

__all__ = ["Locator", "parse", "read_text", "read_toml"]


def parse(text: str, path: str | Path, what: str, error: type[HarnessError]) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path}: bad TOML syntax: {exc}") from exc
    except RecursionError as exc:  # arrays inside arrays, hundreds deep
        raise error(f"{what} {path}: nested too deep to read (at most {MAX_DEPTH} levels)") from exc
    problem = depth_problem(data)
    if problem:
        raise error(f"{what} {path}: {problem}")
    return data


def read_toml(path: str | Path, what: str, error: type[HarnessError]) -> dict[str, Any]:
    return parse(read_text(path, what, error), path, what, error)


class Locator:
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

