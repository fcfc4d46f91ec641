"""Turning SIGTERM into an ordinary unwinding exit, so every ``with`` and finaliser runs.

Python's default SIGTERM ends the process on the spot: no ``finally``, no ``atexit``, and every
server the harness started would be left running. Ctrl-C already unwinds as KeyboardInterrupt;
SIGTERM (and SIGHUP, a closed terminal) are made to do the same.
"""

from __future__ import annotations

import atexit
import signal
import threading
import weakref
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Generic, TypeVar

T = TypeVar("T")


class TerminatedBySignal(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM or SIGHUP arrives; unwinds like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise TerminatedBySignal(signum)


def unwind_on_termination() -> None:
    """Install the handlers (main thread only; elsewhere it is a no-op by necessity)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


class StopAtExit(Generic[T]):
    """What is still running when the interpreter exits (a second Ctrl-C, a crash in teardown,
    SIGTERM above) is stopped then: the last line of defence against leaked processes.

    Weak references: an object stopped and dropped the normal way is forgotten on its own.
    """

    def __init__(self, stop: Callable[[T], None]) -> None:
        self._stop = stop
        self._items: weakref.WeakSet[T] = weakref.WeakSet()
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    def add(self, item: T) -> None:
        with self._lock:
            self._items.add(item)

    def discard(self, item: T) -> None:
        with self._lock:
            self._items.discard(item)

    def live(self) -> Iterable[T]:
        with self._lock:
            return list(self._items)

    def stop_all(self) -> None:
        for item in self.live():
            self._stop(item)
