"""The one way a user's file is read: a regular file only (a FIFO would block for ever, ``/dev/zero``
would fill memory), no larger than its kind allows, decoded as UTF-8, and, once parsed, no
deeper than a person would nest a definition. JSON is read with strict numbers: ``NaN`` and
``Infinity`` are Python's extension, not JSON, and a report that holds one cannot be trusted."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

TOML_LIMIT = 32 * 1024 * 1024  # a week's soak as an incident file (100,000 steps) is about 20 MiB
JSON_LIMIT = 64 * 1024 * 1024  # report.json of a week's soak: its series are sampled, not raw
MAX_DEPTH = 32  # tables and arrays within each other


def read_bounded(path: str | Path, what: str, error: type[HarnessError], limit: int) -> bytes:
    """The bytes of ``path``, refused unless it is a regular file of at most ``limit`` bytes.
    Opened without blocking, then checked on the open descriptor (no race with a swap)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise error(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{what} {path} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file (a FIFO, device or socket is never read)")
        if info.st_size > limit:
            raise error(f"{what} {path} is {info.st_size} bytes; at most {limit} are read")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while being read
        raise error(f"{what} {path} is larger than the {limit} bytes that are read")
    return data


def read_text(path: str | Path, what: str, error: type[HarnessError], limit: int = TOML_LIMIT) -> str:
    data = read_bounded(path, what, error, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path}: not a text file (UTF-8 is expected; byte {exc.start} is not)") from exc
    if "\x00" in text:
        raise error(f"{what} {path}: holds a NUL byte (line {text.count(chr(10), 0, text.index(chr(0))) + 1})")
    return text


def depth_problem(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where ``value`` nests deeper than ``limit`` (iteratively: the check itself never recurses)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if depth > limit:
            return f"{where or 'the top level'} is nested {depth} deep; at most {limit} levels are read"
        if isinstance(item, dict):
            stack.extend((v, depth + 1, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, f"{where}[{n}]") for n, v in enumerate(item))
    return None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str, path: str | Path, what: str, error: type[HarnessError]) -> Any:
    """JSON with strict numbers and bounded nesting."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise error(f"{what} {path}: nested too deep to read") from exc
    except ValueError as exc:  # JSONDecodeError is one
        raise error(f"{what} {path} is not valid JSON: {exc}") from exc
    problem = depth_problem(data)
    if problem:
        raise error(f"{what} {path}: {problem}")
    return data


def unknown_field(raw: Any, known: Any, where: str = "") -> str | None:
    """The first field of ``raw`` (parsed JSON) that ``known`` (the same document read into the
    types and dumped back) lacks, as a dotted path: the types ignore fields they do not name, and a
    misspelt or foreign field must not pass for one they do."""
    if isinstance(raw, dict) and isinstance(known, dict):
        for key, value in raw.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in known:
                return path
            if (found := unknown_field(value, known[key], path)) is not None:
                return found
    elif isinstance(raw, list) and isinstance(known, list | tuple):
        for n, (value, kept) in enumerate(zip(raw, known, strict=False)):
            if (found := unknown_field(value, kept, f"{where}.{n}" if where else str(n))) is not None:
                return found
    return None
