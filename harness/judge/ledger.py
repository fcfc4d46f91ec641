"""The ledger: what the workload wrote, kept compact enough for millions of records.

Record ids come from one source table's sequence, so they are dense: the ledger keeps an
8-byte content digest and a one-byte outcome per id in flat byte arrays indexed by
``id - base`` (about 9 bytes a record, against a few hundred for Python objects).

For the per-key order check it also keeps, per id, the number of its key and two ticks of a
logical clock (12 bytes more): when the write began and when it was acknowledged. As in a
linearizability check, two writes are ordered only when one was acknowledged before the other
began; overlapping writes (a transaction held open while others commit) are concurrent and
either order is right. Source order is therefore commit order where it is known, not id order.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from xxhash import xxh3_64_digest, xxh3_64_intdigest

from harness.errors import HarnessError

DIGEST_SIZE = 8
ABSENT, OK, INDETERMINATE, FAILED = 0, 1, 2, 3
OUTCOMES = {"ok": OK, "indeterminate": INDETERMINATE, "failed": FAILED}
OUTCOME_NAMES = {v: k for k, v in OUTCOMES.items()}
MAX_SPAN = 200_000_000  # ids further apart than this are not one table's sequence


@dataclass(frozen=True)
class Written:
    """One write the source answered (the ledger's unit; the source writer makes them):
    ``outcome`` is ok, failed or indeterminate (commit outcome unknown)."""

    record_id: int | None
    key: str
    payload: bytes
    outcome: str
    token: str = ""  # the write's own mark in the source table (see SOURCE_DDL)


def content_hash(payload: bytes) -> bytes:
    """A 64-bit digest of a record's bytes: XXH3, about five times faster than BLAKE2b at this
    size, which is what lets the reconciler check ten million records in seconds. Corruption is
    not adversarial, so a non-cryptographic hash is enough (a chance collision: 2^-64)."""
    return xxh3_64_digest(payload)


def content_number(payload: bytes) -> int:
    """``content_hash`` as the integer the ledger keeps (the same 8 bytes, big-endian)."""
    return xxh3_64_intdigest(payload)


class Ledger:
    def __init__(self) -> None:
        self.base: int | None = None
        self._digests = array("Q")  # content digest per id, as the integer of its 8 big-endian bytes
        self._outcomes = bytearray()
        self._keys = array("I")  # key number per id (0: no key recorded)
        self._begins = array("I")  # logical clock tick when the write began, per id
        self._acks = array("I")  # logical clock tick when it was acknowledged
        self._key_numbers: dict[str, int] = {}
        self._key_names = [""]  # number -> key
        self._clock = 0
        self.unnumbered = {"failed": 0, "indeterminate": 0}  # writes whose id the database never told us
        # An action beside the timeline (an export judging its file) copies the ledger while the
        # timeline writes: a copy must never see one column grown and another not yet.
        self._lock = threading.Lock()

    @classmethod
    def from_writes(cls, writes: Iterable[Written]) -> Ledger:
        ledger = cls()
        for w in writes:
            ledger.add(w.record_id, content_hash(w.payload), w.outcome, w.key)
        return ledger

    def tick(self) -> int:
        """The logical clock's next tick: take one before a write whose acknowledgement comes later."""
        with self._lock:
            self._clock += 1
            return self._clock

    def add(self, record_id: int | None, digest: bytes, outcome: str, key: str | None = None,
            began: int | None = None) -> None:
        """One write, acknowledged now. ``began``: the tick taken when it began (default: now, a
        write with no overlap, as each row of an insert that committed at once)."""
        if outcome not in OUTCOMES:
            raise HarnessError(f"ledger: unknown write outcome {outcome!r}")
        with self._lock:
            self._add(record_id, digest, outcome, key, began)

    def _add(self, record_id: int | None, digest: bytes, outcome: str, key: str | None, began: int | None) -> None:
        if record_id is None:
            if outcome == "ok":
                raise HarnessError("ledger: an acknowledged write must carry its record id")
            self.unnumbered[outcome] += 1
            return
        if self.base is None:
            self.base = record_id
        if record_id < self.base:
            shift = self.base - record_id
            self._digests[0:0] = array("Q", bytes(shift * DIGEST_SIZE))
            self._outcomes[0:0] = bytes(shift)
            self._keys[0:0] = array("I", bytes(4 * shift))
            self._begins[0:0] = array("I", bytes(4 * shift))
            self._acks[0:0] = array("I", bytes(4 * shift))
            self.base = record_id
        index = record_id - self.base
        if index >= MAX_SPAN:
            raise HarnessError(f"ledger: record id {record_id} is {index} past the first; ids must be dense")
        if index >= len(self._outcomes):
            grow = index + 1 - len(self._outcomes)
            self._outcomes.extend(bytes(grow))
            self._digests.frombytes(bytes(grow * DIGEST_SIZE))
            self._keys.frombytes(bytes(4 * grow))
            self._begins.frombytes(bytes(4 * grow))
            self._acks.frombytes(bytes(4 * grow))
        self._outcomes[index] = OUTCOMES[outcome]
        self._clock += 1
        ack = self._clock
        self._acks[index] = ack
        self._begins[index] = ack if began is None else began
        if key is not None:
            number = self._key_numbers.get(key)
            if number is None:
                number = self._key_numbers[key] = len(self._key_names)
                self._key_names.append(key)
            self._keys[index] = number
        self._digests[index] = int.from_bytes(digest, "big")

    def copy(self) -> Ledger:
        with self._lock:
            return self._copy()

    def _copy(self) -> Ledger:
        twin = Ledger()
        twin.base, twin._digests, twin._outcomes = self.base, array("Q", self._digests), bytearray(self._outcomes)
        twin._keys, twin._acks, twin._begins = array("I", self._keys), array("I", self._acks), array("I", self._begins)
        twin._key_numbers, twin._key_names = dict(self._key_numbers), list(self._key_names)
        twin._clock = self._clock
        twin.unnumbered = dict(self.unnumbered)
        return twin

    def mark_indeterminate_from(self, index: int) -> None:
        """Writes from ``index`` on may or may not be in a sink (made while it was being read)."""
        with self._lock:
            self._mark_indeterminate_from(index)

    def _mark_indeterminate_from(self, index: int) -> None:
        for i in range(index, len(self._outcomes)):
            if self._outcomes[i] == OK:
                self._outcomes[i] = INDETERMINATE

    def mark_indeterminate(self, record_ids: Iterable[int]) -> int:
        """Acknowledged writes the source itself no longer holds (a failover to a standby that never
        got them): neither their absence from a sink nor their presence is a violation. Returns how
        many were acknowledged before."""
        marked = 0
        with self._lock:
            for record_id in record_ids:
                index = self.index(record_id)
                if index is not None and self._outcomes[index] == OK:
                    self._outcomes[index] = INDETERMINATE
                    marked += 1
        return marked

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
        return self._digests[index].to_bytes(DIGEST_SIZE, "big")

    def columns(self) -> tuple[bytearray, array, array, array, array]:
        """The raw columns (outcomes, digests, keys, begins, acks), for the reconciler's hot loop:
        read them, never write them."""
        return self._outcomes, self._digests, self._keys, self._begins, self._acks

    def key_at(self, index: int) -> int:
        """The number of the record's key (0: none recorded); equal numbers, equal keys."""
        return self._keys[index]

    def ack_at(self, index: int) -> int:
        """When the write was acknowledged (a tick of the ledger's logical clock)."""
        return self._acks[index]

    def began_at(self, index: int) -> int:
        return self._begins[index]

    @property
    def key_count(self) -> int:
        """Key numbers run from 1 to key_count - 1."""
        return len(self._key_names)

    def key_name(self, number: int) -> str | None:
        return self._key_names[number] if 0 < number < len(self._key_names) else None

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
