"""The exporter's pause handshake: the pauser raises the pause flag, then reads the workers' idle
flags; each worker must lower its idle flag *before* it reads the pause flag. In the other order
a pause asked between a worker's read of the pause flag and its lowering of the idle flag was
acknowledged as drained (the idle flag was the last pass's) while the worker went on to read
the source or deliver: the ``pause_honoured`` check's finding. These tests put the pauser in
exactly that gap."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from exporter.pipeline import Deliverer, Reader


class PauseAskedWhileRead:
    """A pause flag that, the first time a worker reads it, answers "not paused" (what the worker
    saw) and lets the pauser act at that instant: raise the flag and read the idle flag."""

    def __init__(self, idle: threading.Event) -> None:
        self.idle = idle
        self.flag = False
        self.acknowledged_drained: bool | None = None

    def is_set(self) -> bool:
        if self.acknowledged_drained is None:
            self.flag = True
            self.acknowledged_drained = self.idle.is_set()  # the pauser's read of the idle flag
            return False
        return self.flag


def _control(idle_name: str) -> tuple[SimpleNamespace, PauseAskedWhileRead]:
    idle = threading.Event()
    idle.set()  # left raised by the last pass, which found nothing to do
    pause = PauseAskedWhileRead(idle)
    control = SimpleNamespace(stop=threading.Event(), pause_requested=pause, **{idle_name: idle})
    control.wait = lambda seconds: control.stop.wait(seconds)
    return control, pause


def test_the_reader_is_never_acknowledged_idle_while_it_goes_on_to_read() -> None:
    control, pause = _control("reader_idle")
    reader = Reader.__new__(Reader)
    reader.config = SimpleNamespace(poll_interval_s=0.01, retry_max_backoff_s=0.1)
    reader.control = control
    worked_after_acknowledged: list[bool] = []

    def step() -> bool:
        worked_after_acknowledged.append(bool(pause.acknowledged_drained))
        control.stop.set()
        return True

    reader.step = step  # type: ignore[method-assign]
    reader.run()
    assert pause.acknowledged_drained is False, "the pauser took a stale idle flag for idle"
    assert worked_after_acknowledged == [False]


def test_the_deliverer_is_never_acknowledged_idle_while_it_goes_on_to_deliver() -> None:
    control, pause = _control("deliverer_idle")
    deliverer = Deliverer.__new__(Deliverer)
    deliverer.config = SimpleNamespace(retry_max_backoff_s=0.1)
    deliverer.control = control
    deliverer.sinks = []
    worked_after_acknowledged: list[bool] = []

    def next_batch() -> list:
        worked_after_acknowledged.append(bool(pause.acknowledged_drained))
        control.stop.set()
        return []

    deliverer.next_batch = next_batch  # type: ignore[method-assign]
    deliverer.run()
    assert pause.acknowledged_drained is False, "the pauser took a stale idle flag for idle"
    assert worked_after_acknowledged == [False]
