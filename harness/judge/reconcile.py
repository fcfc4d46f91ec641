"""The reconciler: every acknowledged write, followed across the hops, put in exactly one class.

Jepsen's set checker separates ok, failed and indeterminate writes and reports lost,
unexpected and recovered elements apart; Kafka's system tests compare acknowledged writes with
what a consumer read back. Neither follows a record across hops: for a lost record this names
the hop where it was lost, from the buffer evidence the harness gathered.

Like Jepsen's queue checkers it also judges order: records of one key must reach each stream (a
partition, a file) in source order, that is the order their writes were acknowledged. Only a
record's first delivery counts; its redeliveries are duplicates, each kept with the time the sink
took it so that the judge can tie it to the fault window it follows.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from xxhash import xxh3_64_intdigest

from harness.judge.ledger import ABSENT, FAILED, INDETERMINATE, Ledger, Written
from harness.judge.sinks import DeadLetterRecord, SinkRecord

DELIVERED_INTACT = "delivered_intact"
DELIVERED_CORRUPTED = "delivered_corrupted"
DEAD_LETTERED = "dead_lettered"
DEAD_LETTERED_WITHOUT_REASON = "dead_lettered_without_reason"
# Dead-lettered though the sink would have taken it (its reason does not hold: see letters.py).
DEAD_LETTERED_DELIVERABLE = "dead_lettered_deliverable"
LOST = "lost"
INDETERMINATE_ABSENT = "indeterminate_absent"  # commit outcome unknown and not seen: allowed

HOP_NEVER_BUFFERED = "source->buffer (never reached the buffer)"
HOP_BUFFER_TO_SINK = "buffer->sink (reached the buffer, not the sink)"
HOP_PENDING = "still pending in the buffer"
HOP_SOURCE_TO_SINK = "source->sink (no buffer hop: never reached the sink)"

VIOLATIONS = (DELIVERED_CORRUPTED, DEAD_LETTERED_WITHOUT_REASON, DEAD_LETTERED_DELIVERABLE, LOST)


@dataclass(frozen=True)
class BufferEvidence:
    """What the harness saw of the buffer: ids ever seen there, still there, still pending."""

    seen: frozenset[int] = frozenset()
    present: frozenset[int] = frozenset()
    pending: frozenset[int] = frozenset()
    buffered: bool = True  # False: the target has no buffer hop (a connector writes the sink directly)


@dataclass(frozen=True)
class Inversion:
    """Record ``record_id`` of ``key`` reached ``stream`` after ``overtaken_by``, written after it."""

    record_id: int
    overtaken_by: int
    key: str
    stream: str

    def describe(self) -> str:
        return (f"record {self.record_id} of key {self.key!r} reached {self.stream} after record "
                f"{self.overtaken_by}, which was written after it")


@dataclass
class Reconciliation:
    """Counts for every class; record ids for every class but the (usually huge) intact one."""

    counts: Counter[str] = field(default_factory=Counter)
    classes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    lost_hops: dict[int, str] = field(default_factory=dict)
    dead_letter_reasons: dict[int, str] = field(default_factory=dict)
    misrouted: dict[int, str] = field(default_factory=dict)  # record id -> why its dead letter does not hold
    duplicates: int = 0
    duplicated_ids: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    recovered_indeterminate: list[int] = field(default_factory=list)
    inversions: list[Inversion] = field(default_factory=list)  # first deliveries out of source order
    inversion_count: int = 0
    redeliveries: list[tuple[int, float | None]] = field(default_factory=list)  # (record id, sink time)

    def count(self, cls: str) -> int:
        return self.counts.get(cls, 0)

    @property
    def ok(self) -> bool:
        return not self.unexpected and all(self.count(c) == 0 for c in VIOLATIONS)

    def violations(self) -> list[str]:
        found = [f"{self.count(c)} {c}" for c in VIOLATIONS if self.count(c)]
        if self.unexpected:
            found.append(f"{len(self.unexpected)} unexpected")
        return found

    def summary(self, sample: int = 10) -> dict:
        return {
            "ok": self.ok,
            "counts": dict(sorted(self.counts.items())),
            "duplicates": self.duplicates,
            "unexpected": len(self.unexpected),
            "recovered_indeterminate": len(self.recovered_indeterminate),
            "order_inversions": self.inversion_count,
            "inversion_samples": [x.describe() for x in self.inversions[:sample]],
            "samples": {c: sorted(ids)[:sample] for c, ids in self.classes.items() if c in VIOLATIONS and ids},
            "lost_hops": {str(i): hop for i, hop in sorted(self.lost_hops.items())[:sample]},
            "dead_letter_samples": {str(i): r for i, r in sorted(self.dead_letter_reasons.items())[:sample]},
            "misrouted_samples": {str(i): r for i, r in sorted(self.misrouted.items())[:sample]},
            "unexpected_samples": self.unexpected[:sample],
        }


UNEXPECTED_KEPT = 1000  # beyond this only the count grows: a flood of strangers must not eat memory
REDELIVERIES_KEPT = 100_000  # the same for duplicates and inversions kept one by one


def reconcile(ledger: Ledger | Iterable[Written], delivered: Iterable[SinkRecord],
              dead_letters: Iterable[DeadLetterRecord], buffer: BufferEvidence = BufferEvidence(),
              misrouted: dict[int, str] | None = None) -> Reconciliation:
    """Stream the sinks past the ledger once; memory stays one byte per written record.
    ``misrouted``: dead letters whose reason was checked and does not hold (record id -> why)."""
    if not isinstance(ledger, Ledger):
        ledger = Ledger.from_writes(ledger)
    result = Reconciliation()
    strangers = _Strangers(result)
    copies, corrupted = _stream_deliveries(ledger, delivered, result, strangers)
    letters: dict[int, DeadLetterRecord] = {}
    for letter in dead_letters:
        index = ledger.index(int(letter.record_id)) if letter.record_id.isdigit() else None
        if index is None:
            strangers.add(f"dead letter for record {letter.record_id!r}, never written")
            continue
        letters[index] = letter
    _classify(ledger, copies, corrupted, letters, misrouted or {}, buffer, result)
    strangers.close()
    return result


class _Strangers:
    """Sink contents nobody wrote: the first UNEXPECTED_KEPT named, the rest counted."""

    def __init__(self, result: Reconciliation) -> None:
        self.result, self.count = result, 0

    def add(self, where: str) -> None:
        self.count += 1
        if len(self.result.unexpected) < UNEXPECTED_KEPT:
            self.result.unexpected.append(where)

    def close(self) -> None:
        if self.count > len(self.result.unexpected):
            self.result.unexpected.append(f"... and {self.count - len(self.result.unexpected)} more")


def _stream_deliveries(ledger: Ledger, delivered: Iterable[SinkRecord], result: Reconciliation,
                       strangers: _Strangers) -> tuple[bytearray, set[int]]:
    """One pass over the sink: deliveries per record (saturating at 255), the corrupted ones, the
    redeliveries and the order inversions. The hot loop of a 10M-record recount: columns are
    local, nothing is called per record that need not be."""
    outcomes, digests, keys, begins, acks = ledger.columns()
    base, span, key_count = ledger.base or 0, ledger.span, ledger.key_count
    copies = bytearray(span)
    corrupted: set[int] = set()
    # Per stream, per key number: the latest start among its records delivered so far, and which.
    lanes: dict[str, tuple[array, array]] = {}
    redeliveries, digest_of = result.redeliveries, xxh3_64_intdigest
    stream, starts, which = None, array("I"), array("q")  # the lane of the last record's stream
    for record in delivered:
        record_id = record.record_id
        index = record_id - base if record_id is not None else -1
        if not 0 <= index < span or outcomes[index] == ABSENT or outcomes[index] == FAILED:
            strangers.add(record.location)
            continue
        seen = copies[index]
        if seen == 0:
            key = keys[index]
            if key:  # the order check: see _inversion
                if record.stream is not stream:  # records come a partition at a time: rarely taken
                    stream = record.stream
                    starts, which = lanes.setdefault(stream, (array("I", bytes(4 * key_count)),
                                                              array("q", bytes(8 * key_count))))
                latest = starts[key]
                if latest and acks[index] < latest:
                    _inversion(ledger, result, index, which[key], key, record.stream)
                elif begins[index] > latest:
                    starts[key], which[key] = begins[index], index
        elif len(redeliveries) < REDELIVERIES_KEPT:
            redeliveries.append((record_id, record.ts))  # type: ignore[arg-type]
        if seen < 255:
            copies[index] = seen + 1
        payload = record.payload
        # surrogatepass: a lone surrogate in the sink's JSON is not the record's text (corrupted), not a crash.
        data = payload.encode("utf-8", "surrogatepass") if payload.__class__ is str else (
            payload if payload.__class__ is bytes else b"")  # bytes: a target whose [record] carries them
        if digest_of(data) != digests[index]:
            corrupted.add(index)
    return copies, corrupted


def _inversion(ledger: Ledger, result: Reconciliation, index: int, overtaker: int, key: int, stream: str) -> None:
    """A first delivery acknowledged before the latest start among the records of its key already
    in this stream: overtaken by a write that began after it completed. Overlapping writes are
    concurrent, and either order is right for them."""
    result.inversion_count += 1
    if len(result.inversions) < REDELIVERIES_KEPT:
        result.inversions.append(Inversion(ledger.record_id(index), ledger.record_id(overtaker),
                                           ledger.key_name(key) or f"#{key}", stream))


def _positions(pattern: bytes, data: bytearray) -> Iterator[int]:
    """Where ``pattern`` (one byte class) matches: a C scan, so 10M records cost milliseconds when
    few of them are of interest."""
    return (m.start() for m in re.finditer(pattern, data))


def _classify(ledger: Ledger, copies: bytearray, corrupted: set[int], letters: dict[int, DeadLetterRecord],
              misrouted: dict[int, str], buffer: BufferEvidence, result: Reconciliation) -> None:
    """Every written record in one class. Delivered records are counted in bulk; only the few of
    interest (never delivered, delivered twice, corrupted, of unknown outcome) are visited."""
    outcomes = ledger.columns()[0]
    for index in _positions(rb"[\x02-\xff]", copies):
        result.duplicates += copies[index] - 1
        result.duplicated_ids.append(ledger.record_id(index))
    for index in _positions(re.escape(bytes([INDETERMINATE])), outcomes):
        if copies[index]:
            result.recovered_indeterminate.append(ledger.record_id(index))
    delivered = len(copies) - copies.count(0)  # only written, not failed, records are ever counted
    if delivered - len(corrupted):
        result.counts[DELIVERED_INTACT] = delivered - len(corrupted)
    if corrupted:
        result.counts[DELIVERED_CORRUPTED] = len(corrupted)
        result.classes[DELIVERED_CORRUPTED] = [ledger.record_id(i) for i in sorted(corrupted)]
    for index in _positions(rb"\x00", copies):
        outcome = outcomes[index]
        if outcome == ABSENT or outcome == FAILED:
            continue
        record_id = ledger.record_id(index)
        if index in letters:
            reason = letters[index].reason.strip()
            cls = DEAD_LETTERED if reason else DEAD_LETTERED_WITHOUT_REASON
            if reason and record_id in misrouted:
                cls = DEAD_LETTERED_DELIVERABLE
                result.misrouted[record_id] = misrouted[record_id]
            result.dead_letter_reasons[record_id] = reason
        elif outcome == INDETERMINATE:
            cls = INDETERMINATE_ABSENT
        else:
            cls = LOST
            result.lost_hops[record_id] = lost_hop(record_id, buffer)
        result.counts[cls] += 1
        result.classes[cls].append(record_id)


def lost_hop(record_id: int, buffer: BufferEvidence) -> str:
    if not buffer.buffered:
        return HOP_SOURCE_TO_SINK
    if record_id in buffer.pending:
        return HOP_PENDING
    if record_id in buffer.present or record_id in buffer.seen:
        return HOP_BUFFER_TO_SINK
    return HOP_NEVER_BUFFERED


def hop_counts(result: Reconciliation) -> dict[str, int]:
    return dict(Counter(result.lost_hops.values()))
