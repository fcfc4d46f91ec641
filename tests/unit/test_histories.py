"""The judge of histories: each anomaly class found from a hand-made history, and a clean one passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.judge.changelog import (
    DELETE,
    INSERT,
    MOVE_IN,
    MOVE_OUT,
    UPDATE,
    ChangeEvents,
    ChangeLog,
    change_number,
    version_payload,
)
from harness.judge.histories import (
    BEFORE_IMAGE_WRONG,
    CHANGE_CORRUPTED,
    CHANGE_LOST,
    CHANGE_OUT_OF_ORDER,
    CHANGE_UNEXPECTED,
    CLASSES,
    DELETE_LOST,
    DIVERGED,
    KEY_CHANGE_PARTIAL,
    RESURRECTED,
    TRANSACTION_PARTIAL,
    TRANSACTION_UNMARKED,
    judge_histories,
)

STREAM = "kafka:t/0"


class History:
    """A source history written as the workload writes it, and a sink to replay it into."""

    def __init__(self) -> None:
        self.log = ChangeLog()
        self.payloads: dict[int, bytes] = {}

    def txn(self, *changes: tuple[int, int], outcome: str = "ok") -> list[int]:
        txn, first, numbers = self.log.begin(), self.log.next_number(), []
        for row, kind in changes:
            number = self.log.next_number()
            payload = None if kind in (DELETE, MOVE_OUT) else version_payload(number, b"x" * 20)
            self.log.add(row, kind, txn, payload)
            if payload is not None:
                self.payloads[number] = payload
            numbers.append(number)
        self.log.settle(first, outcome, token=f"t{txn}")
        return numbers

    def move(self, old: int, new: int) -> list[int]:
        numbers = self.txn((old, MOVE_OUT), (new, MOVE_IN))
        self.log.moves[numbers[0]] = numbers[1]
        return numbers

    def sink(self, numbers: list[int], stream: str = STREAM) -> ChangeEvents:
        events = ChangeEvents()
        for n in numbers:
            row = self.log.rows[n]
            if self.log.kinds[n] in (DELETE, MOVE_OUT):
                events.add_delete(row, stream)
            else:
                events.add_version(row, self.payloads[n], stream, self.log)
        return events


def _everything(h: History) -> list[int]:
    return list(range(len(h.log)))


def _story(h: History) -> History:
    h.txn((1, INSERT))
    h.txn((1, UPDATE))
    h.txn((2, INSERT), (3, INSERT))
    h.txn((1, UPDATE))
    h.txn((2, DELETE))
    h.move(3, 4)
    h.txn((4, UPDATE))
    return h


def test_a_clean_delivery_of_every_change_passes_and_counts_what_was_judged() -> None:
    h = _story(History())
    result = judge_histories(h.log, h.sink(_everything(h)))
    assert result.ok, result.violations()
    assert (result.committed, result.rows, result.transactions, result.key_changes, result.deletes) == (9, 4, 2, 1, 1)


def test_redeliveries_are_duplicates_not_violations() -> None:
    h = _story(History())
    numbers = _everything(h)
    result = judge_histories(h.log, h.sink(numbers[:4] + numbers[:4] + numbers[4:]))
    assert result.ok and result.duplicates == 4


def test_an_intermediate_version_missing_is_lost_for_every_version_targets_only() -> None:
    h = _story(History())
    numbers = [n for n in _everything(h) if n != 1]  # row 1's first update never arrived
    lost = judge_histories(h.log, h.sink(numbers))
    assert lost.count(CHANGE_LOST) == 1 and lost.count(DIVERGED) == 0
    assert lost.samples[CHANGE_LOST] == ["row 1: source v1 v2 v3; sink v1 v3"]
    assert judge_histories(h.log, h.sink(numbers), delivers="latest_state").ok


def test_an_older_version_after_a_newer_one_is_out_of_order_and_the_sink_ends_stale() -> None:
    h = History()
    h.txn((7, INSERT))
    for _ in range(4):
        h.txn((7, UPDATE))
    result = judge_histories(h.log, h.sink([0, 1, 3, 4, 2]))
    assert result.count(CHANGE_OUT_OF_ORDER) == 1 and result.count(DIVERGED) == 1
    assert result.samples[DIVERGED] == ["row 7: source v1 v2 v3 v4 v5; sink v1 v2 v4 v5 v3"]


def test_a_delete_that_never_arrives_leaves_the_row_alive_downstream() -> None:
    h = History()
    h.txn((5, INSERT))
    h.txn((5, DELETE))
    result = judge_histories(h.log, h.sink([0]))
    assert result.count(DELETE_LOST) == 1 and result.count(CHANGE_LOST) == 1
    assert result.samples[DELETE_LOST] == ["row 5: source v1 del; sink v1"]


def test_a_late_version_after_the_delete_resurrects_the_row() -> None:
    h = History()
    h.txn((5, INSERT))
    h.txn((5, UPDATE))
    h.txn((5, DELETE))
    result = judge_histories(h.log, h.sink([0, 2, 1]))
    assert result.count(RESURRECTED) == 1 and result.count(DELETE_LOST) == 0
    assert result.count(CHANGE_OUT_OF_ORDER) == 1


def test_half_a_key_change_is_partial_whichever_half_arrived() -> None:
    for kept in (0, 1):
        h = History()
        h.txn((3, INSERT))
        out, into = h.move(3, 4)
        result = judge_histories(h.log, h.sink([0, (out, into)[kept]]))
        assert result.count(KEY_CHANGE_PARTIAL) == 1, kept
        assert "moved->4" in result.samples[KEY_CHANGE_PARTIAL][0]


def test_a_transaction_seen_in_part_is_its_own_class() -> None:
    h = History()
    numbers = h.txn((1, INSERT), (2, INSERT), (3, INSERT))
    result = judge_histories(h.log, h.sink(numbers[:2]))
    assert result.count(TRANSACTION_PARTIAL) == 1 and result.count(CHANGE_LOST) == 1


def test_failed_changes_are_not_owed_and_delivering_one_is_unexpected() -> None:
    h = History()
    h.txn((1, INSERT))
    rolled_back = h.txn((1, UPDATE), outcome="failed")
    assert judge_histories(h.log, h.sink([0])).ok
    result = judge_histories(h.log, h.sink([0] + rolled_back))
    assert result.count(CHANGE_UNEXPECTED) == 1 and result.count(DIVERGED) == 1


def test_changes_of_unknown_outcome_are_judged_neither_way_until_resolved() -> None:
    h = History()
    h.txn((1, INSERT))
    h.txn((1, UPDATE), outcome="indeterminate")
    assert judge_histories(h.log, h.sink([0])).ok
    h.log.resolve([2])  # the source says the second transaction committed
    result = judge_histories(h.log, h.sink([0]))
    assert result.count(CHANGE_LOST) == 1 and result.count(DIVERGED) == 1


def test_corrupted_bytes_and_strange_payloads_are_caught() -> None:
    h = History()
    h.txn((1, INSERT))
    events = ChangeEvents()
    events.add_version(1, h.payloads[0][:-1] + b"?", STREAM, h.log)
    events.add_version(1, b"not a change", STREAM, h.log)
    result = judge_histories(h.log, events)
    assert result.count(CHANGE_CORRUPTED) == 1 and result.count(CHANGE_UNEXPECTED) == 1


@pytest.mark.parametrize("payload,number", [(b"c12:abc", 12), (b"c0:", 0), (b"x12:", None), (b"c:1", None),
                                            (b"c1x:", None), (b"", None)])
def test_the_change_number_is_read_from_the_payload(payload: bytes, number: int | None) -> None:
    assert change_number(payload) == number


def test_every_class_has_a_test_here() -> None:
    source = open(__file__).read()
    assert all(cls.upper() in source for cls in CLASSES)


def test_the_benchmarks_history_judges_clean_and_a_dropped_delete_is_seen() -> None:
    import importlib.util

    from harness.judge.changelog import split_changes
    from harness.model.record_format import RecordFormat

    spec = importlib.util.spec_from_file_location("bench_reconcile", Path(__file__).parents[2] / "bench/reconcile.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.CHANGE_ROWS = 200
    log, records = bench._change_history(4000)
    _plain, events = split_changes(records, RecordFormat(op="op"), log)
    clean = judge_histories(log, events)
    assert clean.ok and clean.key_changes > 50 and clean.deletes > 10 and clean.transactions > 500
    deletes = [n for n, r in enumerate(records) if r.op == "d"]
    _plain, events = split_changes([r for n, r in enumerate(records) if n != deletes[-1]], RecordFormat(op="op"), log)
    assert judge_histories(log, events).count(DELETE_LOST) == 1


def test_before_images_are_held_to_what_the_replica_identity_gives() -> None:
    h = History()
    h.txn((1, INSERT))
    h.txn((1, UPDATE))
    h.txn((1, DELETE))

    def sink(befores: list[bytes | None]) -> ChangeEvents:
        events = ChangeEvents()
        events.add_version(1, h.payloads[0], STREAM, h.log, before=befores[0])
        events.add_version(1, h.payloads[1], STREAM, h.log, before=befores[1])
        events.add_delete(1, STREAM, before=befores[2])
        return events

    full = [None, h.payloads[0], h.payloads[1]]  # FULL: each change names the version before it
    assert judge_histories(h.log, sink(full), before_images="full").ok
    assert judge_histories(h.log, sink([None, None, b""]), before_images="none").ok  # DEFAULT: the key, "" beside it
    stale = judge_histories(h.log, sink([None, h.payloads[0], h.payloads[0]]), before_images="full")
    assert stale.count(BEFORE_IMAGE_WRONG) == 1 and stale.before_images_judged == 2
    assert judge_histories(h.log, sink(full), before_images="none").count(BEFORE_IMAGE_WRONG) == 2
    assert judge_histories(h.log, sink([None, None, None])).ok  # not judged without a mode


def test_a_marking_target_holds_each_transaction_to_one_mark_of_its_own() -> None:
    h = History()
    first = h.txn((1, INSERT), (2, INSERT))
    second = h.txn((1, UPDATE), (2, DELETE))

    def sink(marks: list[int | None]) -> ChangeEvents:
        events = ChangeEvents()
        for n, mark in zip(first + second, marks, strict=True):
            if h.log.kinds[n] == DELETE:
                events.add_delete(h.log.rows[n], STREAM, mark=mark)
            else:
                events.add_version(h.log.rows[n], h.payloads[n], STREAM, h.log, mark=mark)
        return events

    assert judge_histories(h.log, sink([700, 700, 701, 701]), marked=True).ok
    split = judge_histories(h.log, sink([700, 702, 701, 701]), marked=True)  # one transaction, two marks
    assert split.count(TRANSACTION_UNMARKED) == 1
    merged = judge_histories(h.log, sink([700, 700, 700, 700]), marked=True)  # two transactions, one mark
    assert merged.count(TRANSACTION_UNMARKED) == 2
    assert judge_histories(h.log, sink([None, None, 701, 701]), marked=True).count(TRANSACTION_UNMARKED) == 1
    assert judge_histories(h.log, sink([None, None, None, None])).ok  # not judged for an unmarking target


def test_a_row_split_across_streams_takes_the_newest_of_their_last_events() -> None:
    h = History()
    h.txn((4, INSERT))
    h.txn((4, UPDATE))
    h.txn((4, UPDATE))
    events = ChangeEvents()  # partitions added mid-run: the row's later versions went elsewhere
    events.add_version(4, h.payloads[2], "kafka:t/1", h.log)
    events.add_version(4, h.payloads[0], STREAM, h.log)
    events.add_version(4, h.payloads[1], STREAM, h.log)
    assert judge_histories(h.log, events).ok  # read order across streams says nothing
    stale = ChangeEvents()
    for n in (0, 2, 1):  # within one stream a stale version last is the row's state
        stale.add_version(4, h.payloads[n], STREAM, h.log)
    assert judge_histories(h.log, stale).count(DIVERGED) == 1
