"""Every step's apply and remove under a deadline: the timeline never waits for ever on a step.

A step may wait on something only a later step releases (a table lock queued behind a
transaction that commits when its own window ends), or on a server that stopped answering. Each
call runs on a thread of its own while the timeline polls it against the step's deadline
(``StepKind.deadline_s``) and the run's interrupt (Ctrl-C, or explore's budget running out).
A call given up on is remembered: once the run's closers have undone what the steps started
(closing a session ends a lock wait), the abandoned call is waited for, briefly, and what it
applied after all is removed, so no fault outlives its scenario.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from harness.errors import HarnessError

POLL_S = 0.1  # how often a waiting timeline looks at the deadline and the interrupt
SETTLE_S = 10.0  # an abandoned call's grace to return once the closers have run


class StepOverran(HarnessError):
    """A step's apply or remove did not return within its deadline."""


class StepInterrupted(HarnessError):
    """The run was interrupted while a step's call was under way."""


class BoundedCalls:
    """Calls of step code, each on a fresh thread, waited for with a deadline."""

    def __init__(self, interrupt: threading.Event) -> None:
        self.interrupt = interrupt
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="step-call")
        # (what, the call's future, what to do with its result if it returns after all)
        self.abandoned: list[tuple[str, Future[Any], Callable[[Any], None]]] = []

    def call(self, what: str, work: Callable[[], Any], deadline_s: float,
             if_late: Callable[[Any], None] = lambda _result: None, interruptible: bool = True) -> Any:
        future = self._pool.submit(work)
        give_up = time.monotonic() + deadline_s
        while True:
            try:
                return future.result(timeout=POLL_S)
            except FutureTimeout:
                pass
            if interruptible and self.interrupt.is_set():
                self.abandoned.append((what, future, if_late))
                raise StepInterrupted(f"{what}: interrupted while under way")
            if time.monotonic() >= give_up:
                self.abandoned.append((what, future, if_late))
                raise StepOverran(f"{what}: did not return within its deadline of {deadline_s:.0f}s (it waits on "
                                  "something that does not come: the run is stopped, healed and reported)")

    def settle(self) -> list[str]:
        """After the closers ran: each abandoned call has returned (what it applied is undone) or
        is named as still running. Returns the problems."""
        problems = []
        for what, future, if_late in self.abandoned:
            try:
                result = future.result(timeout=SETTLE_S)
            except FutureTimeout:
                problems.append(f"{what}: still running {SETTLE_S:.0f}s after the run was healed")
                continue
            except Exception as exc:  # noqa: BLE001 - it failed late (a closer ended its wait): said, nothing to undo
                problems.append(f"{what}: ended after the run was healed: {exc.__class__.__name__}: {exc}")
                continue
            try:
                if_late(result)
            except (HarnessError, OSError) as exc:
                problems.append(f"{what}: undoing what it applied late: {exc}")
        self.abandoned.clear()
        return problems

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
