"""Turning SIGTERM into an ordinary unwinding exit, so every ``with`` and finaliser runs.

Python's default SIGTERM ends the process on the spot: no ``finally``, no ``atexit``, and every
server the harness started would be left running. Ctrl-C already unwinds as KeyboardInterrupt;
SIGTERM (and SIGHUP, a closed terminal) are made to do the same.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


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
