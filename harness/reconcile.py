"""The reconciler: every acknowledged write, followed across the hops, put in exactly one class.

Jepsen's set checker separates ok, failed and indeterminate writes and reports lost,
unexpected and recovered elements apart; Kafka's system tests compare acknowledged writes with
what a consumer read back. Neither follows a record across hops: for a lost record this names
the hop where it was lost, from the buffer evidence the harness gathered.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.sinks import DeadLetterRecord, SinkRecord
from harness.workload import Written, content_hash

DELIVERED_INTACT = "delivered_intact"
DELIVERED_CORRUPTED = "delivered_corrupted"
DEAD_LETTERED = "dead_lettered"
DEAD_LETTERED_WITHOUT_REASON = "dead_lettered_without_reason"
LOST = "lost"
INDETERMINATE_ABSENT = "indeterminate_absent"  # commit outcome unknown and not seen: allowed

HOP_NEVER_BUFFERED = "source->buffer (never reached the buffer)"
HOP_BUFFER_TO_SINK = "buffer->sink (reached the buffer, not the sink)"
HOP_PENDING = "still pending in the buffer"

VIOLATIONS = (DELIVERED_CORRUPTED, DEAD_LETTERED_WITHOUT_REASON, LOST)


@dataclass(frozen=True)
class BufferEvidence:
    """What the harness saw of the buffer: ids ever seen there, still there, still pending."""

    seen: frozenset[int] = frozenset()
    present: frozenset[int] = frozenset()
    pending: frozenset[int] = frozenset()


@dataclass
class Reconciliation:
    classes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    lost_hops: dict[int, str] = field(default_factory=dict)
    dead_letter_reasons: dict[int, str] = field(default_factory=dict)
    duplicates: int = 0
    duplicated_ids: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    recovered_indeterminate: list[int] = field(default_factory=list)

    def count(self, cls: str) -> int:
        return len(self.classes.get(cls, []))

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
            "counts": {c: len(ids) for c, ids in sorted(self.classes.items())},
            "duplicates": self.duplicates,
            "unexpected": len(self.unexpected),
            "recovered_indeterminate": len(self.recovered_indeterminate),
            "samples": {c: sorted(ids)[:sample] for c, ids in self.classes.items() if c in VIOLATIONS and ids},
            "lost_hops": {str(i): hop for i, hop in sorted(self.lost_hops.items())[:sample]},
            "unexpected_samples": self.unexpected[:sample],
        }


def reconcile(ledger: Iterable[Written], delivered: Iterable[SinkRecord], dead_letters: Iterable[DeadLetterRecord],
              buffer: BufferEvidence = BufferEvidence()) -> Reconciliation:
    result = Reconciliation()
    writes = {w.record_id: w for w in ledger if w.record_id is not None}
    outcomes = {i: w.outcome for i, w in writes.items()}
    copies: dict[int, list[str]] = defaultdict(list)
    for record in delivered:
        if record.record_id is None or record.record_id not in writes or outcomes[record.record_id] == "failed":
            result.unexpected.append(record.where)
            continue
        copies[record.record_id].append(content_hash((record.payload or "").encode("utf-8")))
    letters: dict[int, DeadLetterRecord] = {}
    for letter in dead_letters:
        try:
            record_id = int(letter.record_id)
        except ValueError:
            result.unexpected.append(f"dead letter with record id {letter.record_id!r}")
            continue
        if record_id not in writes:
            result.unexpected.append(f"dead letter for unknown record {record_id}")
            continue
        letters[record_id] = letter
    for record_id, write in writes.items():
        if write.outcome == "failed":
            continue
        hashes = copies.get(record_id, [])
        if len(hashes) > 1:
            result.duplicates += len(hashes) - 1
            result.duplicated_ids.append(record_id)
        if hashes:
            cls = DELIVERED_INTACT if all(h == write.hash for h in hashes) else DELIVERED_CORRUPTED
            if write.outcome == "indeterminate":
                result.recovered_indeterminate.append(record_id)
        elif record_id in letters:
            reason = letters[record_id].reason.strip()
            cls = DEAD_LETTERED if reason else DEAD_LETTERED_WITHOUT_REASON
            result.dead_letter_reasons[record_id] = reason
        elif write.outcome == "indeterminate":
            cls = INDETERMINATE_ABSENT
        else:
            cls = LOST
            result.lost_hops[record_id] = lost_hop(record_id, buffer)
        result.classes[cls].append(record_id)
    return result


def lost_hop(record_id: int, buffer: BufferEvidence) -> str:
    if record_id in buffer.pending:
        return HOP_PENDING
    if record_id in buffer.present or record_id in buffer.seen:
        return HOP_BUFFER_TO_SINK
    return HOP_NEVER_BUFFERED


def hop_counts(result: Reconciliation) -> dict[str, int]:
    return dict(Counter(result.lost_hops.values()))
