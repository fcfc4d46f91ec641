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

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.ledger import FAILED, INDETERMINATE, Ledger, content_hash
from harness.sinks import DeadLetterRecord, SinkRecord

if TYPE_CHECKING:
    from harness.workload import Written

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

VIOLATIONS = (DELIVERED_CORRUPTED, DEAD_LETTERED_WITHOUT_REASON, DEAD_LETTERED_DELIVERABLE, LOST)


@dataclass(frozen=True)
class BufferEvidence:
    """What the harness saw of the buffer: ids ever seen there, still there, still pending."""

    seen: frozenset[int] = frozenset()
    present: frozenset[int] = frozenset()
    pending: frozenset[int] = frozenset()


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
    misrouted = misrouted or {}
    if not isinstance(ledger, Ledger):
        ledger = Ledger.from_writes(ledger)
    result = Reconciliation()
    unexpected_count = 0

    def stranger(where: str) -> None:
        nonlocal unexpected_count
        unexpected_count += 1
        if len(result.unexpected) < UNEXPECTED_KEPT:
            result.unexpected.append(where)

    copies = bytearray(ledger.span)  # deliveries per record, saturating at 255
    corrupted: set[int] = set()
    order = _OrderCheck(ledger, result)
    for record in delivered:
        index = ledger.index(record.record_id)
        if index is None or ledger.outcome_at(index) == FAILED:
            stranger(record.where)
            continue
        seen = copies[index]
        if seen == 0:
            order.first_delivery(index, record.stream)
        elif len(result.redeliveries) < REDELIVERIES_KEPT:
            result.redeliveries.append((ledger.record_id(index), record.ts))
        if seen < 255:
            copies[index] = seen + 1
        if content_hash((record.payload or "").encode("utf-8")) != ledger.digest_at(index):
            corrupted.add(index)
    letters: dict[int, DeadLetterRecord] = {}
    for letter in dead_letters:
        index = ledger.index(int(letter.record_id)) if letter.record_id.isdigit() else None
        if index is None:
            stranger(f"dead letter for record {letter.record_id!r}, never written")
            continue
        letters[index] = letter
    for index, outcome in ledger.entries():
        if outcome == FAILED:
            continue
        record_id = ledger.record_id(index)
        seen = copies[index]
        if seen > 1:
            result.duplicates += seen - 1
            result.duplicated_ids.append(record_id)
        if seen:
            cls = DELIVERED_CORRUPTED if index in corrupted else DELIVERED_INTACT
            if outcome == INDETERMINATE:
                result.recovered_indeterminate.append(record_id)
        elif index in letters:
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
        if cls != DELIVERED_INTACT:
            result.classes[cls].append(record_id)
    if unexpected_count > len(result.unexpected):
        result.unexpected.append(f"... and {unexpected_count - len(result.unexpected)} more")
    return result


class _OrderCheck:
    """Per (stream, key): the latest start among the records delivered so far. A first delivery
    acknowledged before that start was overtaken by a write of its key that began after it had
    completed: an inversion. Writes that overlapped are concurrent: either order is right."""

    def __init__(self, ledger: Ledger, result: Reconciliation) -> None:
        self.ledger, self.result = ledger, result
        self.latest: dict[tuple[str, int], tuple[int, int]] = {}  # (stream, key) -> (began, index)

    def first_delivery(self, index: int, stream: str) -> None:
        key = self.ledger.key_at(index)
        if not key:
            return  # written without a key (Locust's writers): no order to judge
        slot = (stream, key)
        latest = self.latest.get(slot)
        if latest is not None and self.ledger.ack_at(index) < latest[0]:
            self.result.inversion_count += 1
            if len(self.result.inversions) < REDELIVERIES_KEPT:
                self.result.inversions.append(Inversion(
                    self.ledger.record_id(index), self.ledger.record_id(latest[1]),
                    self.ledger.key_name(key) or f"#{key}", stream))
            return
        began = self.ledger.began_at(index)
        if latest is None or began > latest[0]:
            self.latest[slot] = (began, index)


def lost_hop(record_id: int, buffer: BufferEvidence) -> str:
    if record_id in buffer.pending:
        return HOP_PENDING
    if record_id in buffer.present or record_id in buffer.seen:
        return HOP_BUFFER_TO_SINK
    return HOP_NEVER_BUFFERED


def hop_counts(result: Reconciliation) -> dict[str, int]:
    return dict(Counter(result.lost_hops.values()))
