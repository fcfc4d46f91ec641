"""Condition polls with deadlines: the only way the harness waits (never a bare sleep)."""

from __future__ import annotations

import threading
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


class Deadline:
    """An interrupt of its own for one bounded piece of work: set when ``outer`` is (Ctrl-C) or
    when ``seconds`` have passed (``overran`` then says so). Used as a context manager; the
    watcher thread ends with it."""

    def __init__(self, outer: threading.Event, seconds: float) -> None:
        self.outer, self.seconds = outer, seconds
        self.event = threading.Event()
        self.overran = False
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="deadline", daemon=True)

    def _watch(self) -> None:
        give_up = time.monotonic() + self.seconds
        while not self._done.wait(DEADLINE_POLL_S):
            if self.outer.is_set():
                self.event.set()
                return
            if time.monotonic() >= give_up:
                self.overran = True
                self.event.set()
                return

    def __enter__(self) -> Deadline:
        self._watcher.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._watcher.join(timeout=5)


DEADLINE_POLL_S = 0.2
