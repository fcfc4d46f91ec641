"""The reader's cursor with ``redis_wait_replicas``: it moves past an append only once enough
replicas hold it, holds (retried) while they do not, and after a failover that took the append
away stays where the checkpoint is (the real servers: tests/integration/test_exporter_durability.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from exporter.errors import TransientError
from exporter.pipeline import Reader


class Replicas:
    """A buffer whose replicas answer as told, and which remembers what it was asked."""

    def __init__(self, answer: bool | None) -> None:
        self.answer, self.asked = answer, []

    def replicated(self, checkpoint: int, replicas: int, timeout_ms: int) -> bool | None:
        self.asked.append((checkpoint, replicas, timeout_ms))
        return self.answer


def _reader(answer: bool | None) -> Reader:
    reader = Reader.__new__(Reader)
    reader.config = SimpleNamespace(redis_wait_replicas=1, redis_wait_timeout_ms=300)  # type: ignore[assignment]
    reader.buffer = Replicas(answer)  # type: ignore[assignment]
    reader.checkpoint, reader._unreplicated = 100, 150
    return reader


def test_the_cursor_moves_once_a_replica_holds_the_append() -> None:
    reader = _reader(True)
    reader._await_replicas()
    assert (reader.checkpoint, reader._unreplicated) == (150, None)
    assert reader.buffer.asked == [(150, 1, 300)]  # type: ignore[attr-defined]


def test_the_cursor_holds_while_no_replica_has_it_and_asks_again_on_the_next_pass() -> None:
    reader = _reader(False)
    for _ in range(2):
        with pytest.raises(TransientError, match="fewer than 1 replica.*up to row 150"):
            reader._await_replicas()
    assert (reader.checkpoint, reader._unreplicated) == (100, 150)
    reader.buffer.answer = True  # type: ignore[attr-defined]
    reader._await_replicas()
    assert reader.checkpoint == 150


def test_after_a_failover_took_the_append_the_cursor_stays_where_it_stood() -> None:
    reader = _reader(None)
    reader._await_replicas()
    assert (reader.checkpoint, reader._unreplicated) == (100, None)


def test_nothing_is_asked_without_an_append_waiting() -> None:
    reader = _reader(True)
    reader._unreplicated = None
    reader._await_replicas()
    assert reader.buffer.asked == [] and reader.checkpoint == 100  # type: ignore[attr-defined]
