"""Turning SIGTERM into an ordinary unwinding exit, so every ``with`` and finaliser runs.

Python's default SIGTERM ends the process on the spot: no ``finally``, no ``atexit``, and every
server the harness started would be left running. Ctrl-C already unwinds as KeyboardInterrupt;
SIGTERM (and SIGHUP, a closed terminal) are made to do the same.
"""

from __future__ import annotations

import atexit
import os
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


# The signals that stop the harness. Once one has, the others must not interrupt the teardown it
# started: a supervisor that repeats its signal (pkill twice, a CI runner's cancel, a third
# Ctrl-C) otherwise raised again inside a ``finally`` that was stopping servers, and left them.
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_unwinding, _told = threading.Event(), threading.Event()


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    if not _told.is_set():
        _told.set()
        # os.write, not print: a handler may run in the middle of another write to stderr.
        os.write(2, f"faultline: {signal.Signals(signum).name} again: already stopping everything it started "
                    "(kill -9 would leave it to `faultline clean`)\n".encode())


def _unwind(signum: int, _frame: FrameType | None) -> None:
    _unwinding.set()
    for sig in STOPPING:
        signal.signal(sig, _already_stopping)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise TerminatedBySignal(signum)


def unwind_on(*signals: int) -> None:
    """The first of ``signals`` unwinds (KeyboardInterrupt for Ctrl-C, TerminatedBySignal for the
    others), and every stopping signal after it is noted, not raised. Main thread only; elsewhere
    it is a no-op by necessity."""
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            signal.signal(sig, _unwind)


def unwinding() -> bool:
    """Whether a stopping signal has begun the unwinding (a handler then must not be put back)."""
    return _unwinding.is_set()


def unwind_on_termination() -> None:
    """SIGTERM and SIGHUP unwind as Ctrl-C does."""
    unwind_on(signal.SIGTERM, signal.SIGHUP)


def ignore_stopping_signals() -> None:
    """Everything is stopped or being stopped at exit: later signals are ignored outright. A
    Python handler would not do, since the interpreter's finalisation restores the default ones,
    and a signal then ended the process by the signal rather than with its exit status."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOPPING:
            signal.signal(sig, signal.SIG_IGN)


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
