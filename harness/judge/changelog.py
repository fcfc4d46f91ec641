"""The change log and the sink's change events: what the judge of histories reads.

``ChangeLog``: one entry per change the workload made, numbered in commit order (one writer
commits one transaction at a time), with its row, kind, transaction, outcome and the digest of
the version it wrote. ``ChangeEvents``: the sink's change events in the order read, flat arrays.
``split_changes`` parts a sink's messages into plain records (the record reconciler's) and
change events; ``outstanding`` says what the drain still waits for.
"""

from __future__ import annotations

from array import array
from collections.abc import Container, Iterable
from typing import Literal

import msgspec
from xxhash import xxh3_64_intdigest

from harness.errors import HarnessError
from harness.judge.sinks import DeadLetterRecord, SinkRecord, message_decoder
from harness.model.record_format import RecordFormat

# What a change did to its row. A primary-key change is two changes of one transaction: the old
# row moved out (a delete downstream) and the new row moved in (an insert downstream).
INSERT, UPDATE, KEY_UPDATE, DELETE, MOVE_OUT, MOVE_IN = 1, 2, 3, 4, 5, 6
KIND_NAMES = {INSERT: "insert", UPDATE: "update", KEY_UPDATE: "key_update", DELETE: "delete",
              MOVE_OUT: "key_change", MOVE_IN: "key_change"}
REMOVES = frozenset({DELETE, MOVE_OUT})  # the row is gone after it
OK, INDETERMINATE, FAILED = 1, 2, 3
OUTCOMES = {"ok": OK, "indeterminate": INDETERMINATE, "failed": FAILED}

Delivers = Literal["every_version", "latest_state"]
PAYLOAD_MARK = b"c"  # a version's payload starts with c<change number>: which version a message is
DELETE_EVENT = -1  # what a delete event carries where a version carries its change number


def version_payload(number: int, filler: bytes) -> bytes:
    """A version's bytes: its change number first, so that the judge knows which version a sink
    message carries whatever the target does with the row's other columns."""
    return b"c%d:" % number + filler


def change_number(payload: bytes) -> int | None:
    """The change number a version's payload begins with (None: not a payload the workload wrote)."""
    if not payload.startswith(PAYLOAD_MARK):
        return None
    head, sep, _rest = payload[1:24].partition(b":")
    return int(head) if sep and head.isdigit() else None


class ChangeLog:
    """What the workload changed, one entry per change in commit order: its row, kind,
    transaction, outcome and the digest of the version it wrote (0 for a delete)."""

    def __init__(self) -> None:
        self.rows = array("q")
        self.kinds = bytearray()
        self.txns = array("I")
        self.outcomes = bytearray()
        self.digests = array("Q")
        self.moves: dict[int, int] = {}  # change number of a key change's move-out -> its move-in
        self.tokens: dict[int, str] = {}  # transaction -> token, for those whose outcome is unknown
        self._txn = 0

    def __len__(self) -> int:
        return len(self.kinds)

    def begin(self) -> int:
        """A new transaction's number."""
        self._txn += 1
        return self._txn

    def next_number(self) -> int:
        return len(self.kinds)

    def add(self, row: int, kind: int, txn: int, payload: bytes | None = None) -> int:
        """A change, pending until its transaction's ``settle``; its number."""
        if kind not in KIND_NAMES:
            raise HarnessError(f"change log: unknown change kind {kind}")
        number = len(self.kinds)
        self.rows.append(row)
        self.kinds.append(kind)
        self.txns.append(txn)
        self.outcomes.append(INDETERMINATE)
        self.digests.append(xxh3_64_intdigest(payload) if payload is not None else 0)
        return number

    def settle(self, first: int, outcome: str, token: str = "") -> None:
        """The transaction whose changes begin at ``first`` ended so (ok, failed, indeterminate)."""
        code = OUTCOMES[outcome]
        for n in range(first, len(self.kinds)):
            self.outcomes[n] = code
        if code == INDETERMINATE and first < len(self.kinds):
            self.tokens[self.txns[first]] = token

    def resolve(self, committed: Iterable[int]) -> None:
        """Transactions of unknown outcome, read back from the source: those in ``committed``
        happened, the rest did not."""
        done = set(committed)
        for n, outcome in enumerate(self.outcomes):
            if outcome == INDETERMINATE and self.txns[n] in self.tokens:
                self.outcomes[n] = OK if self.txns[n] in done else FAILED
        self.tokens = {t: tok for t, tok in self.tokens.items() if t not in done} if done else {}

    def committed(self) -> int:
        return self.outcomes.count(OK)


class ChangeEvents:
    """The sink's change events in the order read (stream by stream, in stream order), flat."""

    def __init__(self) -> None:
        self.rows = array("q")
        self.numbers = array("q")  # the change number a version carries; DELETE_EVENT for a delete
        self.streams = array("I")
        self.befores = array("q")  # the version a before image names (NO_BEFORE: none, UNREADABLE_BEFORE)
        self.marks = array("q")  # the transaction mark an event carries (NO_MARK: none)
        self.corrupt: set[int] = set()  # event positions whose bytes are not the version's
        self.strangers: list[str] = []  # events that are no change at all (no number in the payload)
        self._stream_numbers: dict[str, int] = {}
        self.stream_names: list[str] = []

    def __len__(self) -> int:
        return len(self.rows)

    def _stream(self, name: str) -> int:
        number = self._stream_numbers.get(name)
        if number is None:
            number = self._stream_numbers[name] = len(self.stream_names)
            self.stream_names.append(name)
        return number

    def add_delete(self, row: int, stream: str, before: bytes | None = None, mark: int | None = None) -> None:
        self.rows.append(row)
        self.numbers.append(DELETE_EVENT)
        self.streams.append(self._stream(stream))
        self.befores.append(_before(before))
        self.marks.append(NO_MARK if mark is None else mark)

    def add_version(self, row: int, payload: bytes, stream: str, log: ChangeLog, where: str = "",
                    before: bytes | None = None, mark: int | None = None) -> None:
        number = change_number(payload)
        if number is None:
            if len(self.strangers) < 1000:
                self.strangers.append(f"{where or stream}: row {row}, a payload no change wrote")
            return
        if 0 <= number < len(log) and xxh3_64_intdigest(payload) != log.digests[number]:
            self.corrupt.add(len(self.rows))
        self.rows.append(row)
        self.numbers.append(number)
        self.streams.append(self._stream(stream))
        self.befores.append(_before(before))
        self.marks.append(NO_MARK if mark is None else mark)


NO_MARK = -1
NO_BEFORE, UNREADABLE_BEFORE = -1, -2  # what ChangeEvents.befores holds besides a change number


def _before(payload: bytes | None) -> int:
    """The change number a before image's payload carries (the version it says the row had). An
    empty one is none: with replica identity DEFAULT a delete's before image holds the key, and a
    NOT NULL column the connector fills with its type's empty value."""
    if not payload:
        return NO_BEFORE
    number = change_number(payload)
    return UNREADABLE_BEFORE if number is None else number


def _mark(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _bytes(payload: object) -> bytes | None:
    if isinstance(payload, bytes):
        return payload
    return payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else None


def split_changes(records: list[SinkRecord], fmt: RecordFormat, log: ChangeLog) -> tuple[list[SinkRecord],
                                                                                        ChangeEvents]:
    """The sink's messages parted: plain records (rows the record workload wrote: the record
    reconciler's) and change events (rows the change workload wrote, and any update or delete,
    which no plain row has): the judge of histories'."""
    rows = set(log.rows)
    plain: list[SinkRecord] = []
    events = ChangeEvents()
    operation = fmt.operation
    for record in records:
        row, op = record.record_id, operation(record.op)
        if row is None or (row not in rows and op == "insert"):
            plain.append(record)
        elif op == "delete":
            events.add_delete(row, record.stream, _bytes(record.before), _mark(record.tx))
        else:
            payload = _bytes(record.payload)
            if payload is None or not op:
                events.strangers.append(f"{record.location}: row {row}, operation {record.op!r} without a version")
                continue
            events.add_version(row, payload, record.stream, log, record.location, _bytes(record.before),
                               _mark(record.tx))
    return plain, events


def outstanding(log: ChangeLog, events: ChangeEvents, delivers: Delivers = "every_version") -> int:
    """Committed changes the sink has not shown yet (for a latest-state target: rows whose final
    state it has not shown): what the drain waits for."""
    seen = set(events.numbers)
    deleted = {row for row, n in zip(events.rows, events.numbers, strict=True) if n == DELETE_EVENT}
    kinds, rows = log.kinds, log.rows

    def arrived(n: int) -> bool:
        return n in seen or (kinds[n] in REMOVES and rows[n] in deleted)

    if delivers == "every_version":
        return sum(1 for n, outcome in enumerate(log.outcomes) if outcome == OK and not arrived(n))
    finals = {rows[n]: n for n, outcome in enumerate(log.outcomes) if outcome == OK}
    return sum(1 for n in finals.values() if not arrived(n))


DEAD_LETTER_STREAM = "dead letters"  # where a change dead-lettered for a reason that holds arrived


def change_letters(letters: Iterable[DeadLetterRecord], fmt: RecordFormat, log: ChangeLog,
                   misrouted: Container[int]) -> tuple[list[DeadLetterRecord], list[SinkRecord]]:
    """The record workload's dead letters, and the change workload's as change events that
    arrived on a stream of their own: a version dead-lettered for a reason that holds (a change
    too large for a topic whose limit was lowered) is accounted for, as a dead-lettered record
    is, and judged with its row's history. A letter whose reason does not hold (``misrouted``)
    is no arrival: its version stays owed. A letter of a change row whose original is no change
    event stays with the records (reported unexpected there: nothing to judge it by)."""
    rows = set(log.rows)
    decode = message_decoder(fmt)
    records: list[DeadLetterRecord] = []
    arrived: list[SinkRecord] = []
    for letter in letters:
        row = int(letter.record_id) if letter.record_id.isdigit() else None
        if row is None or row not in rows:
            records.append(letter)
            continue
        if row in misrouted:
            continue  # owed still: the history judge counts the version lost
        try:
            event = decode(letter.original)
        except (msgspec.DecodeError, ValueError):  # the raw payload a reader refused, not an event
            records.append(letter)
            continue
        if event.record_id != row:
            records.append(letter)
            continue
        event.stream, event.position = DEAD_LETTER_STREAM, len(arrived)
        arrived.append(event)
    return records, arrived
