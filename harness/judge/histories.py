"""The judge of histories: every change the workload committed, followed per row to the sink.

The record reconciler (reconcile.py) follows one write per id. A change-data pipeline carries
more than that: a row is inserted, updated many times, its key moved, deleted, and several of
these commit together. The workload keeps each row's committed history (``ChangeLog``: one
entry per change, numbered in commit order, since one writer commits them one transaction at a
time); the sink's change events are folded against it per row. As in Jepsen's list-append
checker, an anomaly is named by class and shown with the row's history on both sides::

    row 17: source v1 v2 v3 v4 del; sink v1 v2 v4 v3

Classes (each its own count, samples and check in harness.checks.changes):
- ``change_lost``: a committed version or delete never reached the sink (targets that deliver
  every version; a latest-state target owes only the final state: ``diverged``);
- ``change_corrupted``: a version delivered with other bytes than were written;
- ``change_unexpected``: a change event nobody committed (a rolled-back change, an unknown row);
- ``change_out_of_order``: an older version of a row reached a stream after a newer one;
- ``delete_lost``: the source row ends deleted, the sink never got the delete;
- ``resurrected``: the delete arrived, then an older version brought the row back;
- ``key_change_partial``: of a primary-key change, only the old key's delete or only the new
  key's insert arrived;
- ``transaction_partial``: a transaction of several changes arrived in part;
- ``diverged``: the sink's state of a row, folded in stream order, is not the source's final one.

Memory stays a few bytes a change: the log and the events are flat arrays, and only rows of
interest are ever turned into Python objects (1M changes judge in about a second: bench/).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from harness.judge.changelog import (
    DELETE,
    DELETE_EVENT,
    FAILED,
    INDETERMINATE,
    KEY_UPDATE,
    MOVE_IN,
    MOVE_OUT,
    NO_BEFORE,
    NO_MARK,
    OK,
    REMOVES,
    UPDATE,
    ChangeEvents,
    ChangeLog,
    Delivers,
)

CHANGE_LOST = "change_lost"
CHANGE_CORRUPTED = "change_corrupted"
CHANGE_UNEXPECTED = "change_unexpected"
CHANGE_OUT_OF_ORDER = "change_out_of_order"
DELETE_LOST = "delete_lost"
RESURRECTED = "resurrected"
KEY_CHANGE_PARTIAL = "key_change_partial"
TRANSACTION_PARTIAL = "transaction_partial"
DIVERGED = "diverged"
BEFORE_IMAGE_WRONG = "before_image_wrong"
TRANSACTION_UNMARKED = "transaction_unmarked"
CLASSES = (CHANGE_LOST, CHANGE_CORRUPTED, CHANGE_UNEXPECTED, CHANGE_OUT_OF_ORDER, DELETE_LOST, RESURRECTED,
           KEY_CHANGE_PARTIAL, TRANSACTION_PARTIAL, TRANSACTION_UNMARKED, DIVERGED, BEFORE_IMAGE_WRONG)
# What a target's before images should hold: "full" (the row's previous version, as replica
# identity FULL gives), "none" (no old payload, as DEFAULT gives), None (not judged).
BeforeImages = Literal["full", "none"] | None
_SAMPLES = 10


@dataclass
class HistoryJudgement:
    """Counts per class and, for the first rows of each, their histories on both sides."""

    delivers: Delivers = "every_version"
    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    committed: int = 0  # changes committed
    rows: int = 0  # rows the workload changed
    transactions: int = 0  # committed transactions of more than one change
    key_changes: int = 0
    deletes: int = 0
    duplicates: int = 0  # change events delivered more than once
    uncertain: int = 0  # changes whose commit outcome stayed unknown (judged neither way)
    unexpected_samples: list[str] = field(default_factory=list)
    before_images: BeforeImages = None  # what before images were held to (None: not judged)
    before_images_judged: int = 0
    marked: bool = False  # transactions held to one mark each

    @property
    def ok(self) -> bool:
        return not any(self.counts.get(c) for c in CLASSES)

    def count(self, cls: str) -> int:
        return self.counts.get(cls, 0)

    def violations(self) -> list[str]:
        return [f"{self.count(c)} {c}" for c in CLASSES if self.count(c)]

    def described(self, cls: str) -> str:
        return "; ".join(self.samples.get(cls, [])[:3])


class _Fold:
    """One pass over the events: deliveries per change, each row's state in stream order, order."""

    def __init__(self, log: ChangeLog, events: ChangeEvents, result: HistoryJudgement) -> None:
        self.log, self.events, self.result = log, events, result
        self.copies = bytearray(len(log))
        # row -> change number of its last event (a delete's number too). Folded per stream; a row
        # whose events landed in several streams (partitions added under it) has no order across
        # them, and takes the newest of its streams' last events (judged leniently, never worse).
        self.state: dict[int, int] = {}
        self._last: dict[tuple[int, int], int] = {}  # (stream, row) -> its last event there
        self.removed: dict[int, int] = {}  # row -> its removing change (delete or move-out)
        self.odd_rows: dict[str, set[int]] = {c: set() for c in CLASSES}
        self.delete_seen: set[int] = set()
        for n, kind in enumerate(log.kinds):
            if kind in REMOVES and log.outcomes[n] != FAILED:
                self.removed[log.rows[n]] = n

    def run(self) -> None:
        log, events, result = self.log, self.events, self.result
        rows_of, outcomes, copies, last = log.rows, log.outcomes, self.copies, self._last
        latest: dict[tuple[int, int], int] = {}  # (stream, row) -> newest change number delivered there
        size = len(log)
        for i, (row, number, stream) in enumerate(zip(events.rows, events.numbers, events.streams, strict=True)):
            if number == DELETE_EVENT:
                number = self.removed.get(row, -1)
                if number < 0:
                    self._unexpected(row, f"a delete of row {row}, which no committed change deleted")
                    continue
                self.delete_seen.add(row)
            elif not 0 <= number < size or rows_of[number] != row or outcomes[number] == FAILED:
                self._unexpected(row, f"row {row} version of change {number}, which was never committed for it")
                if 0 <= number < size and rows_of[number] == row:
                    last[(stream, row)] = number  # a rolled-back version applied downstream: the row holds it
                continue
            if i in events.corrupt:
                result.counts[CHANGE_CORRUPTED] += 1
                self.odd_rows[CHANGE_CORRUPTED].add(row)
            if copies[number]:
                result.duplicates += 1
            else:
                newest = latest.get((stream, row), -1)
                if newest > number:
                    result.counts[CHANGE_OUT_OF_ORDER] += 1
                    self.odd_rows[CHANGE_OUT_OF_ORDER].add(row)
                else:
                    latest[(stream, row)] = number
            if copies[number] < 255:
                copies[number] += 1
            last[(stream, row)] = number
        state = self.state
        for (_stream, row), number in last.items():
            if number > state.get(row, -1):
                state[row] = number

    def _unexpected(self, row: int, what: str) -> None:
        self.result.counts[CHANGE_UNEXPECTED] += 1
        self.odd_rows[CHANGE_UNEXPECTED].add(row)
        if len(self.result.unexpected_samples) < _SAMPLES:
            self.result.unexpected_samples.append(what)


def judge_histories(log: ChangeLog, events: ChangeEvents, delivers: Delivers = "every_version",
                    before_images: BeforeImages = None, marked: bool = False) -> HistoryJudgement:
    """Every committed change against the sink's events (see the module docstring). ``marked``:
    the target marks transactions, so each must arrive under one mark of its own."""
    result = HistoryJudgement(delivers=delivers, before_images=before_images, marked=marked)
    fold = _Fold(log, events, result)
    fold.run()
    if events.strangers:
        result.counts[CHANGE_UNEXPECTED] += len(events.strangers)
        result.unexpected_samples += events.strangers[:_SAMPLES - len(result.unexpected_samples)]
    finals = _finals(log, result)
    if delivers == "every_version":
        _lost_changes(log, fold, result)
        _partial_transactions(log, fold, result)
    _partial_key_changes(log, fold, result)
    _convergence(log, fold, finals, result)
    if before_images is not None:
        _before_images(log, events, fold, result, before_images)
    if marked:
        _transaction_marks(log, events, fold, result)
    result.samples = {cls: [describe_row(log, events, row) for row in sorted(rows)[:_SAMPLES]]
                      for cls, rows in fold.odd_rows.items() if rows}
    return result


def _finals(log: ChangeLog, result: HistoryJudgement) -> dict[int, int]:
    """Each row's last committed change; rows touched by a change of unknown outcome are left out
    (their final state is unknown, so it is judged neither way)."""
    finals: dict[int, int] = {}
    uncertain: set[int] = set()
    for n, (row, outcome) in enumerate(zip(log.rows, log.outcomes, strict=True)):
        if outcome == OK:
            finals[row] = n
        elif outcome == INDETERMINATE:
            uncertain.add(row)
            result.uncertain += 1
    result.committed = log.committed()
    result.rows = len(finals)
    for row in uncertain:
        finals.pop(row, None)
    kinds = log.kinds
    result.deletes = sum(1 for n, k in enumerate(kinds) if k == DELETE and log.outcomes[n] == OK)
    result.key_changes = sum(1 for n in log.moves if log.outcomes[n] == OK)
    return finals


def _lost_changes(log: ChangeLog, fold: _Fold, result: HistoryJudgement) -> None:
    for n, outcome in enumerate(log.outcomes):
        if outcome == OK and not fold.copies[n]:
            result.counts[CHANGE_LOST] += 1
            fold.odd_rows[CHANGE_LOST].add(log.rows[n])


def _partial_transactions(log: ChangeLog, fold: _Fold, result: HistoryJudgement) -> None:
    sizes: Counter[int] = Counter()
    arrived: Counter[int] = Counter()
    for n, (txn, outcome) in enumerate(zip(log.txns, log.outcomes, strict=True)):
        if outcome == OK:
            sizes[txn] += 1
            arrived[txn] += bool(fold.copies[n])
    members: dict[int, list[int]] = {}
    for txn, size in sizes.items():
        if size > 1:
            result.transactions += 1
            if 0 < arrived[txn] < size:
                result.counts[TRANSACTION_PARTIAL] += 1
                members[txn] = []
    if members:
        for n, txn in enumerate(log.txns):
            if txn in members:
                fold.odd_rows[TRANSACTION_PARTIAL].add(log.rows[n])


def _partial_key_changes(log: ChangeLog, fold: _Fold, result: HistoryJudgement) -> None:
    for out, into in log.moves.items():
        if log.outcomes[out] != OK:
            continue
        if bool(fold.copies[out]) != bool(fold.copies[into]):
            result.counts[KEY_CHANGE_PARTIAL] += 1
            fold.odd_rows[KEY_CHANGE_PARTIAL].update((log.rows[out], log.rows[into]))


def _convergence(log: ChangeLog, fold: _Fold, finals: dict[int, int], result: HistoryJudgement) -> None:
    """The sink folded per row (its last event wins) against the source's final state."""
    kinds, state = log.kinds, fold.state
    for row, final in finals.items():
        seen = state.get(row)
        if kinds[final] in REMOVES:
            if seen is None or kinds[seen] in REMOVES:
                continue  # deleted on both sides (or never there downstream: a lost change says so)
            cls = RESURRECTED if row in fold.delete_seen else DELETE_LOST
            result.counts[cls] += 1
            fold.odd_rows[cls].add(row)
        elif seen != final:
            result.counts[DIVERGED] += 1
            fold.odd_rows[DIVERGED].add(row)


def _before_images(log: ChangeLog, events: ChangeEvents, fold: _Fold, result: HistoryJudgement,
                   mode: Literal["full", "none"]) -> None:
    """Each update's and delete's before image (first delivery) against the version the row had
    before it: that version with ``full``, no old payload with ``none``."""
    previous: dict[int, int] = {}  # change number -> the row's committed version before it
    last: dict[int, int] = {}
    for n, (row, outcome, kind) in enumerate(zip(log.rows, log.outcomes, log.kinds, strict=True)):
        if outcome != OK:
            continue
        if kind in (UPDATE, KEY_UPDATE, DELETE, MOVE_OUT) and row in last:
            previous[n] = last[row]
        last[row] = n
    judged: set[int] = set()
    for row, number, before in zip(events.rows, events.numbers, events.befores, strict=True):
        number = fold.removed.get(row, -1) if number == DELETE_EVENT else number
        if number in judged or number not in previous:
            continue  # an insert, a redelivery, or a change the log does not know
        judged.add(number)
        result.before_images_judged += 1
        if before != (previous[number] if mode == "full" else NO_BEFORE):
            result.counts[BEFORE_IMAGE_WRONG] += 1
            fold.odd_rows[BEFORE_IMAGE_WRONG].add(row)


def _transaction_marks(log: ChangeLog, events: ChangeEvents, fold: _Fold, result: HistoryJudgement) -> None:
    """A target that marks transactions: the events of one committed transaction carry one mark,
    and no two transactions share one (a consumer applying by mark would merge or split them)."""
    marks: dict[int, set[int]] = {}  # source transaction -> marks its events carried
    for row, number, mark in zip(events.rows, events.numbers, events.marks, strict=True):
        number = fold.removed.get(row, -1) if number == DELETE_EVENT else number
        if 0 <= number < len(log) and log.outcomes[number] == OK:
            marks.setdefault(log.txns[number], set()).add(mark)
    owner: dict[int, int] = {}
    bad: set[int] = set()
    for txn, seen in marks.items():
        if len(seen) != 1 or NO_MARK in seen:
            bad.add(txn)
            continue
        mark = next(iter(seen))
        if owner.setdefault(mark, txn) != txn:
            bad.update((txn, owner[mark]))
    if bad:
        result.counts[TRANSACTION_UNMARKED] += len(bad)
        for n, txn in enumerate(log.txns):
            if txn in bad:
                fold.odd_rows[TRANSACTION_UNMARKED].add(log.rows[n])


def describe_row(log: ChangeLog, events: ChangeEvents, row: int) -> str:
    """``row 17: source v1 v2 v3 del; sink v1 v3 v2``: versions numbered in commit order."""
    labels: dict[int, str] = {}
    source: list[str] = []
    for n, (r, outcome) in enumerate(zip(log.rows, log.outcomes, strict=True)):
        if r != row or outcome == FAILED:
            continue
        label = _label(log, n, len([x for x in labels.values() if x.startswith("v")]) + 1)
        labels[n] = label
        source.append(label if outcome == OK else label + "?")
    removed = next((n for n in labels if log.kinds[n] in REMOVES), -1)
    sink = []
    for r, number in zip(events.rows, events.numbers, strict=True):
        if r == row:
            sink.append(labels.get(removed if number == DELETE_EVENT else number, f"#{number}"))
    return f"row {row}: source {' '.join(source) or '-'}; sink {' '.join(sink) or '-'}"


def _label(log: ChangeLog, n: int, version: int) -> str:
    kind = log.kinds[n]
    if kind == DELETE:
        return "del"
    if kind == MOVE_OUT:
        return f"moved->{log.rows[log.moves[n]]}" if n in log.moves else "moved"
    if kind == MOVE_IN:
        origin = next((log.rows[o] for o, i in log.moves.items() if i == n), None)
        return f"v{version}(from {origin})"
    return f"v{version}"
