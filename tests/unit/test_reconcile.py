"""The reconciler puts every write in exactly one class, with crafted inputs for each class."""

from __future__ import annotations

import json

from harness.judge.ledger import Written
from harness.judge.reconcile import (
    DEAD_LETTERED,
    DEAD_LETTERED_WITHOUT_REASON,
    DELIVERED_CORRUPTED,
    DELIVERED_INTACT,
    HOP_BUFFER_TO_SINK,
    HOP_NEVER_BUFFERED,
    HOP_PENDING,
    INDETERMINATE_ABSENT,
    LOST,
    BufferEvidence,
    reconcile,
)
from harness.judge.sinks import DeadLetterRecord, SinkRecord


def w(i: int, text: str = "", outcome: str = "ok") -> Written:
    return Written(i if outcome != "failed" or i else None, f"k{i}", (text or f"payload {i}").encode(), outcome)


def sink(i: int | None, text: str | None = None) -> SinkRecord:
    payload = text if text is not None else f"payload {i}"
    return SinkRecord(i, payload, json.dumps({"id": i, "payload": payload}).encode(), f"kafka:t/0@{i}")


def letter(i: int | str, reason: str = "unencodable") -> DeadLetterRecord:
    return DeadLetterRecord(str(i), reason, "detail", "sink.file", b"orig")


def test_intact_delivery_is_clean() -> None:
    result = reconcile([w(1), w(2, "中文 😀")], [sink(1), sink(2, "中文 😀")], [])
    assert result.count(DELIVERED_INTACT) == 2 and DELIVERED_INTACT not in result.classes
    assert result.ok and result.violations() == []


def test_corrupted_delivery_is_a_violation_even_beside_an_intact_copy() -> None:
    result = reconcile([w(1, "naïve")], [sink(1, "naïve"), sink(1, "na?ve")], [])
    assert result.classes[DELIVERED_CORRUPTED] == [1] and not result.ok
    assert result.duplicates == 1


def test_duplicates_are_counted_apart_from_loss() -> None:
    result = reconcile([w(1), w(2)], [sink(1), sink(1), sink(1), sink(2)], [])
    assert result.ok and result.duplicates == 2 and result.duplicated_ids == [1]


def test_dead_letters_with_and_without_reason() -> None:
    result = reconcile([w(1), w(2)], [], [letter(1, "unencodable"), letter(2, " ")])
    assert result.classes[DEAD_LETTERED] == [1] and result.dead_letter_reasons[1] == "unencodable"
    assert result.classes[DEAD_LETTERED_WITHOUT_REASON] == [2] and not result.ok


def test_lost_records_name_their_hop() -> None:
    evidence = BufferEvidence(seen=frozenset({2, 3}), present=frozenset({3}), pending=frozenset({3}))
    result = reconcile([w(1), w(2), w(3)], [], [], evidence)
    assert result.classes[LOST] == [1, 2, 3] and not result.ok
    assert result.lost_hops == {1: HOP_NEVER_BUFFERED, 2: HOP_BUFFER_TO_SINK, 3: HOP_PENDING}
    assert result.violations() == ["3 lost"]


def test_unexpected_records_are_reported() -> None:
    result = reconcile([w(1)], [sink(1), sink(99), SinkRecord(None, None, b"garbage", "kafka:t/0@7")],
                       [letter(42), letter("x")])
    assert len(result.unexpected) == 4 and not result.ok
    assert "kafka:t/0@7" in result.unexpected


def test_indeterminate_writes_may_appear_or_not() -> None:
    ledger = [w(1, outcome="indeterminate"), w(2, outcome="indeterminate")]
    result = reconcile(ledger, [sink(1)], [])
    assert result.ok
    assert result.count(DELIVERED_INTACT) == 1 and result.recovered_indeterminate == [1]
    assert result.classes[INDETERMINATE_ABSENT] == [2]


def test_a_failed_write_that_shows_up_is_unexpected() -> None:
    failed = Written(5, "k5", b"payload 5", "failed")
    result = reconcile([failed], [sink(5)], [])
    assert result.unexpected == ["kafka:t/0@5"] and not result.ok


def test_summary_carries_counts_and_samples() -> None:
    summary = reconcile([w(1), w(2)], [sink(1)], []).summary()
    assert summary["counts"] == {DELIVERED_INTACT: 1, LOST: 1}
    assert summary["samples"] == {LOST: [2]} and summary["lost_hops"] == {"2": HOP_NEVER_BUFFERED}


def test_the_ledger_is_compact_and_rebases_on_a_lower_id() -> None:
    from harness.judge.ledger import Ledger, content_hash

    ledger = Ledger()
    ledger.add(10, content_hash(b"x"), "ok")
    ledger.add(7, content_hash(b"y"), "indeterminate")
    ledger.add(None, content_hash(b"z"), "failed")
    assert ledger.base == 7 and ledger.span == 4
    assert ledger.index(8) is None and ledger.index(10) == 3
    assert ledger.outcome_counts() == {"ok": 1, "indeterminate": 1, "failed": 1}
    later = ledger.copy()
    later.mark_indeterminate_from(3)
    assert later.ids("ok") == set() and ledger.ids("ok") == {10}


class _Message:
    """What confluent-kafka's consume() returns, as far as the sink reader uses it."""

    def __init__(self, offset: int, value: bytes, partition: int = 0) -> None:
        self._offset, self._value, self._partition = offset, value, partition

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 5000)


def test_the_fast_reader_keeps_odd_messages_for_the_reconciler() -> None:
    from harness.judge.ledger import Ledger, content_hash
    from harness.judge.sinks import _decoded

    messages = [_Message(0, b'{"id":1,"key":"k","payload":"one"}'),
                _Message(1, b'{"id":"2","payload":"two"}'),  # an id as a string: still record 2
                _Message(2, b"not json"),
                _Message(3, b'{"id":3,"payload":"\\ud800"}'),  # a lone surrogate: corrupted, not a crash
                _Message(4, b'{"id":4,"payload":"late"}')]  # past the end offset the read began with
    todo = {0}
    batch = _decoded(messages, {0: 4}, {0: "kafka:t/0"}, todo)
    assert [r.record_id for r in batch] == [1, 2, None, 3] and todo == set()
    assert batch[0].location == "kafka:t/0@0" and batch[0].ts == 5.0 and batch[2].location == "kafka:t/0@2"
    ledger = Ledger()
    for record_id, payload in ((1, b"one"), (2, b"two"), (3, b"three")):
        ledger.add(record_id, content_hash(payload), "ok")
    outcome = reconcile(ledger, batch, [])
    assert outcome.count("delivered_intact") == 2 and outcome.classes["delivered_corrupted"] == [3]
    assert outcome.unexpected == ["kafka:t/0@2"]
