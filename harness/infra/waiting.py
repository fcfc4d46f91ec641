"""Condition polls with deadlines: the only way the harness waits (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


class WaitTimeout(HarnessError, TimeoutError):
    """A condition did not hold before its deadline; the message says what was awaited and what was seen."""


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1,
             describe: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            seen = f"; last seen: {describe()}" if describe else ""
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}{seen}")
        time.sleep(interval)
