"""Dead letters of the change workload's rows: a version dead-lettered for a reason that holds is
accounted for (it arrived on the dead-letter stream), one whose reason does not hold stays owed,
and the record reconciler never sees them. Found by explore: a topic's limit lowered under a
change workload, the clean exporter's too-large changes reported lost and their letters
unexpected."""

from __future__ import annotations

import json

from harness.judge.changelog import (
    DEAD_LETTER_STREAM,
    INSERT,
    UPDATE,
    ChangeLog,
    change_letters,
    split_changes,
    version_payload,
)
from harness.judge.histories import CHANGE_LOST, judge_histories
from harness.judge.sinks import DeadLetterRecord, SinkRecord
from harness.model.target import TargetDefinition


def _log() -> ChangeLog:
    log = ChangeLog()
    for row, kind in ((240, INSERT), (240, UPDATE)):
        txn, first = log.begin(), log.next_number()
        log.add(row, kind, txn, version_payload(first, b"x"))
        log.settle(first, "ok", token=f"t{txn}")
    return log


def _event(log: ChangeLog, number: int, op: str) -> bytes:
    payload = version_payload(number, b"x").decode()
    return json.dumps({"id": 240, "key": "k", "payload": payload, "op": op, "seq": number, "tx": 1}).encode()


def _judged(log: ChangeLog, sink: list[SinkRecord]) -> int:
    fmt = TargetDefinition.load().record
    _plain, events = split_changes(sink, fmt, log)
    return judge_histories(log, events).counts[CHANGE_LOST]


def test_a_change_dead_lettered_for_a_true_reason_arrived_and_one_misrouted_is_still_owed() -> None:
    log, fmt = _log(), TargetDefinition.load().record
    delivered = SinkRecord(240, version_payload(0, b"x").decode(), stream="kafka:t/0", position=0, op="c", tx=1)
    too_large = DeadLetterRecord("240", "too_large", "", "sink.kafka", _event(log, 1, "u"))
    record = DeadLetterRecord("7", "malformed_row", "", "source.read", b"\xff")
    records, arrived = change_letters([too_large, record], fmt, log, misrouted=set())
    assert records == [record] and [(a.record_id, a.stream) for a in arrived] == [(240, DEAD_LETTER_STREAM)]
    assert _judged(log, [delivered]) == 1  # without the letter: the update is lost
    assert _judged(log, [delivered, *arrived]) == 0  # with it: accounted for
    records, arrived = change_letters([too_large], fmt, log, misrouted={240})
    assert records == [] and arrived == []  # its reason does not hold: owed still, and not a record's letter


def test_a_letter_of_a_change_row_that_is_no_event_stays_with_the_records() -> None:
    log, fmt = _log(), TargetDefinition.load().record
    raw = DeadLetterRecord("240", "malformed_row", "", "source.read", b"\xff\xfe")
    assert change_letters([raw], fmt, log, misrouted=set()) == ([raw], [])
