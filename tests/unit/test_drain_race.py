"""The drain reads the sinks again once it sees the buffer empty (found by explore: a batch
delivered between the sink read and the buffer read was called lost, 100 records the topic held;
the clean exporter "failed" a dropped-produce-answer schedule 3 of 3)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import harness.play.verdict as verdict
from harness.judge.sinks import SinkRecord


class _RacingRun:
    """The sink before the last delivery, then the buffer empty after it: what a real run raced."""

    def __init__(self) -> None:
        self.delivered = False
        self.ledger = SimpleNamespace(ids=lambda _state: {1, 2})
        self.scenario = SimpleNamespace(fault_seconds=0.0, steps=())
        self.result = SimpleNamespace(recovery_s=None)

    def live_exporter(self) -> object:
        return object()

    def changes_owed(self, _sink: list[SinkRecord]) -> int:
        return 0  # no change workload

    def settled(self, _exporter: object) -> tuple[list[SinkRecord], list, set[int]]:
        ids = {1, 2} if self.delivered else {1}
        return [SinkRecord(record_id=i, payload="p") for i in ids], [], ids

    def never_buffered(self, _acknowledged: set[int]) -> set[int]:
        return set()

    def buffer_idle(self) -> bool:
        self.delivered = True  # the exporter delivered and emptied the buffer between the two reads
        return True


def test_the_sinks_are_read_again_after_the_buffer_is_seen_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verdict, "QUIET_S", -1.0)  # quiet already: the buffer decides
    monkeypatch.setattr(verdict, "drain_deadline", lambda _run: 5.0)
    seen, _recovery = verdict.drain(_RacingRun(), healed_at=0.0)  # type: ignore[arg-type]
    assert {r.record_id for r in seen.sink} == {1, 2}


def test_a_write_never_buffered_keeps_the_drain_waiting_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty buffer says nothing of rows the exporter has not read yet (a reader backing off
    after a source error): the quiet rule waits QUIET_UNREAD_S for them, not QUIET_S."""
    import time

    class Unread(_RacingRun):
        def never_buffered(self, acknowledged: set[int]) -> set[int]:
            return {2}

        def settled(self, _exporter: object) -> tuple[list[SinkRecord], list, set[int]]:
            return [SinkRecord(record_id=1, payload="p")], [], {1}

    monkeypatch.setattr(verdict, "QUIET_S", 0.0)
    monkeypatch.setattr(verdict, "QUIET_UNREAD_S", 0.6)
    monkeypatch.setattr(verdict, "drain_deadline", lambda _run: 5.0)
    started = time.monotonic()
    verdict.drain(Unread(), healed_at=0.0)  # type: ignore[arg-type]
    assert 0.5 < time.monotonic() - started < 3
