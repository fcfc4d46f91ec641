"""The ledger: what the workload wrote, kept compact enough for millions of records.

Record ids come from one source table's sequence, so they are dense: the ledger keeps an
8-byte content digest and a one-byte outcome per id in flat byte arrays indexed by
``id - base`` (about 9 bytes a record, against a few hundred for Python objects).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.workload import Written

DIGEST_SIZE = 8
ABSENT, OK, INDETERMINATE, FAILED = 0, 1, 2, 3
OUTCOMES = {"ok": OK, "indeterminate": INDETERMINATE, "failed": FAILED}
OUTCOME_NAMES = {v: k for k, v in OUTCOMES.items()}
MAX_SPAN = 200_000_000  # ids further apart than this are not one table's sequence


def content_hash(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=DIGEST_SIZE).digest()


class Ledger:
    def __init__(self) -> None:
        self.base: int | None = None
        self._digests = bytearray()
        self._outcomes = bytearray()
        self.unnumbered = {"failed": 0, "indeterminate": 0}  # writes whose id the database never told us

    @classmethod
    def from_writes(cls, writes: Iterable[Written]) -> Ledger:
        ledger = cls()
        for w in writes:
            ledger.add(w.record_id, content_hash(w.payload), w.outcome)
        return ledger

    def add(self, record_id: int | None, digest: bytes, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise HarnessError(f"ledger: unknown write outcome {outcome!r}")
        if record_id is None:
            if outcome == "ok":
                raise HarnessError("ledger: an acknowledged write must carry its record id")
            self.unnumbered[outcome] += 1
            return
        if self.base is None:
            self.base = record_id
        if record_id < self.base:
            shift = self.base - record_id
            self._digests[0:0] = bytes(shift * DIGEST_SIZE)
            self._outcomes[0:0] = bytes(shift)
            self.base = record_id
        index = record_id - self.base
        if index >= MAX_SPAN:
            raise HarnessError(f"ledger: record id {record_id} is {index} past the first; ids must be dense")
        if index >= len(self._outcomes):
            grow = index + 1 - len(self._outcomes)
            self._outcomes.extend(bytes(grow))
            self._digests.extend(bytes(grow * DIGEST_SIZE))
        self._outcomes[index] = OUTCOMES[outcome]
        self._digests[index * DIGEST_SIZE:(index + 1) * DIGEST_SIZE] = digest

    def copy(self) -> Ledger:
        twin = Ledger()
        twin.base, twin._digests, twin._outcomes = self.base, bytearray(self._digests), bytearray(self._outcomes)
        twin.unnumbered = dict(self.unnumbered)
        return twin

    def mark_indeterminate_from(self, index: int) -> None:
        """Writes from ``index`` on may or may not be in a sink (made while it was being read)."""
        for i in range(index, len(self._outcomes)):
            if self._outcomes[i] == OK:
                self._outcomes[i] = INDETERMINATE

    def outcome_counts(self) -> dict[str, int]:
        counts = {name: self.unnumbered.get(name, 0) for name in OUTCOMES}
        for _index, outcome in self.entries():
            counts[OUTCOME_NAMES[outcome]] += 1
        return counts

    @property
    def span(self) -> int:
        return len(self._outcomes)

    def index(self, record_id: int | None) -> int | None:
        """Position of a written record, or None for an id the workload never wrote."""
        if record_id is None or self.base is None:
            return None
        index = record_id - self.base
        if 0 <= index < len(self._outcomes) and self._outcomes[index] != ABSENT:
            return index
        return None

    def outcome_at(self, index: int) -> int:
        return self._outcomes[index]

    def digest_at(self, index: int) -> bytes:
        return bytes(self._digests[index * DIGEST_SIZE:(index + 1) * DIGEST_SIZE])

    def record_id(self, index: int) -> int:
        assert self.base is not None
        return self.base + index

    def entries(self) -> Iterator[tuple[int, int]]:
        """(index, outcome) of every numbered write."""
        for index, outcome in enumerate(self._outcomes):
            if outcome != ABSENT:
                yield index, outcome

    def ids(self, outcome: str = "ok") -> set[int]:
        code = OUTCOMES[outcome]
        return {self.record_id(i) for i, o in self.entries() if o == code}

    def __len__(self) -> int:
        return sum(1 for _ in self.entries()) + sum(self.unnumbered.values())
