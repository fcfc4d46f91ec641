"""The bundled exporter's change mode, without servers: a change becomes its event, keyed by its
row; and each seeded change-mode defect changes what a page delivers (what the judge of
histories then catches: tests/unit/test_histories.py, and changes_baseline end to end)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from exporter import defects
from exporter.changes import change_value, changed, row_key
from exporter.config import Config
from exporter.errors import PermanentRecordError
from exporter.source import Row

PAGE = [Row(1, "k", b"c0:a", 0, "c", 10, 500), Row(2, "k", b"c1:b", 0, "u", 10, 501),
        Row(3, "k", b"c2:c", 0, "u", 10, 502), Row(4, "k", None, 0, "d", 11, 503),
        Row(5, "k", b"c4:d", 0, "c", 12, 503), Row(6, "k", None, 0, "d", 10, 504)]


@pytest.fixture
def defect(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def switch(name: str) -> None:
        monkeypatch.setenv(defects.ENV, name)
        defects.active.cache_clear()
    yield switch
    monkeypatch.delenv(defects.ENV, raising=False)
    defects.active.cache_clear()


def test_a_change_is_its_event_and_its_key_is_the_row() -> None:
    value = change_value(PAGE[1])
    assert json.loads(value) == {"id": 10, "key": "k", "payload": "c1:b", "op": "u", "seq": 2, "tx": 501}
    assert row_key(value) == b"10"
    delete = json.loads(change_value(PAGE[3]))
    assert delete["payload"] is None and delete["op"] == "d" and row_key(change_value(PAGE[3])) == b"11"


def test_a_change_that_is_not_utf8_is_refused_under_its_row() -> None:
    with pytest.raises(PermanentRecordError) as caught:
        change_value(Row(7, "k", b"\xff", 0, "u", 42, 1))
    assert caught.value.record_id == 42


def test_the_clean_change_path_delivers_every_change_in_order() -> None:
    assert changed(PAGE) == PAGE


def test_deletes_dropped_drops_every_delete(defect) -> None:  # noqa: ANN001
    defect("deletes_dropped")
    assert [r.id for r in changed(PAGE)] == [1, 2, 3, 5]


def test_changes_coalesced_keeps_a_rows_last_change_only(defect) -> None:  # noqa: ANN001
    defect("changes_coalesced_per_page")
    assert [r.id for r in changed(PAGE)] == [4, 5, 6]


def test_key_change_as_update_merges_a_delete_and_an_insert_of_one_transaction(defect) -> None:  # noqa: ANN001
    defect("key_change_as_update")
    kept = changed(PAGE)
    assert [(r.id, r.op) for r in kept] == [(1, "c"), (2, "u"), (3, "u"), (5, "u"), (6, "d")]


def test_change_mode_reads_the_change_log_and_refuses_another_mode() -> None:
    assert Config(source_table="t", source_mode="changes").read_table == "t_changes"
    assert Config(source_table="t").read_table == "t"
    with pytest.raises(Exception, match="source_mode must be rows or changes"):
        Config(postgres_dsn="x", redis_url="y", kafka_bootstrap="z", source_mode="upserts").validate()


# -- the defects through the harness's reader and judge: each seen, the clean path clean ------------
def _pipeline(history: list[tuple[str, int]]) -> tuple[object, list]:
    """A change log as the harness keeps it and the sink the exporter's change path makes of the
    trigger's rows (one transaction per change, a key change as its delete and insert)."""
    from harness.judge.changelog import DELETE, INSERT, MOVE_IN, MOVE_OUT, UPDATE, ChangeLog, version_payload
    from harness.judge.sinks import _DECODE

    log, rows = ChangeLog(), []
    kinds = {"c": INSERT, "u": UPDATE, "d": DELETE}
    for op, row in history:
        txn, first = log.begin(), log.next_number()
        if op == "k":  # a key change: row -> row + 100
            out = log.add(row, MOVE_OUT, txn)
            payload = version_payload(out + 1, b"moved")
            log.moves[out] = log.add(row + 100, MOVE_IN, txn, payload)
            rows += [Row(len(rows) + 1, "k", None, 0, "d", row, txn),
                     Row(len(rows) + 2, "k", payload, 0, "c", row + 100, txn)]
        else:
            payload = None if op == "d" else version_payload(log.next_number(), b"v")
            log.add(row, kinds[op], txn, payload)
            rows.append(Row(len(rows) + 1, "k", payload, 0, op, row, txn))
        log.settle(first, "ok")
    sink = []
    for n, change in enumerate(changed(rows)):
        record = _DECODE(change_value(change))
        record.stream, record.position = "kafka:t/0", n
        sink.append(record)
    return log, sink


HISTORY = [("c", 1), ("u", 1), ("u", 1), ("c", 2), ("d", 2), ("c", 3), ("k", 3)]


@pytest.mark.parametrize("name,classes", [
    ("deletes_dropped", {"change_lost", "delete_lost", "key_change_partial"}),
    ("changes_coalesced_per_page", {"change_lost"}),
    ("key_change_as_update", {"change_lost", "delete_lost", "key_change_partial"}),
])
def test_each_change_defect_is_seen_by_the_judge_of_histories(defect, name: str,  # noqa: ANN001
                                                               classes: set[str]) -> None:
    from harness.judge.changelog import split_changes
    from harness.judge.histories import judge_histories
    from harness.model.record_format import RecordFormat

    log, sink = _pipeline(HISTORY)
    plain, events = split_changes(sink, RecordFormat(op="op"), log)
    assert judge_histories(log, events).ok and not plain  # the clean change path
    defect(name)
    log, sink = _pipeline(HISTORY)
    plain, events = split_changes(sink, RecordFormat(op="op"), log)
    found = {cls for cls, n in judge_histories(log, events).counts.items() if n}
    assert classes <= found, found


@pytest.mark.parametrize("code", ["MSG_SIZE_TOO_LARGE", "INVALID_RECORD"])
def test_a_change_the_broker_refuses_is_dead_lettered_under_its_row_not_its_change_number(
        monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Found by explore (a topic's max.message.bytes lowered under a change workload): letters
    from the sink carried the change number, so the row's version was lost to the judge and an
    operator looking the letter up found no such row."""
    from confluent_kafka import KafkaError

    from exporter import sinks
    from exporter.buffer import Entry

    monkeypatch.setattr(sinks, "Producer", lambda settings: object())
    sink = sinks.KafkaSink(Config(postgres_dsn="x", redis_url="y", kafka_bootstrap="z", source_mode="changes"))
    entry = Entry(b"1-0", b"502", change_value(PAGE[2]))  # change 502 of row 10
    result = sinks.SendResult()
    sink._judge_reports([entry], {b"502": KafkaError(getattr(KafkaError, code))}, {}, 0, 0.0, result)
    assert [letter.record_id for _entry, letter in result.dead] == [10]
