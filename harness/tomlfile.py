"""Reading the harness's TOML inputs (target definitions, external backend settings) with errors
that name the file and say what it was meant to be."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def read_toml(path: str | Path, what: str, error: type[HarnessError]) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise error(f"{what} {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path}: bad TOML syntax: {exc}") from exc
