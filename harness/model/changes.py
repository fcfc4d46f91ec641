"""Change workloads and what a target carries of them.

``ChangeMix`` (``Workload.changes``): the seeded mix of operations the change writer draws
(harness.rig.changes) on rows of its own: inserts, updates of the payload and of the key column,
deletes and primary-key changes, single or several to a transaction, spread over many rows or
hammering a hot one. ``TargetChanges`` (a target's ``[changes]``): which of these the pipeline
carries, whether it delivers every version or only the latest state, and the knobs that put it
in its change mode. The judge of histories (harness.judge.histories) holds the sink to both.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.model.strict import STRICT

Fraction = Annotated[float, Field(ge=0, le=1)]
Operation = Literal["insert", "update", "key_update", "delete", "key_change"]
OPERATIONS: tuple[Operation, ...] = ("insert", "update", "key_update", "delete", "key_change")
TRANSACTION_MAX = 100  # changes in one transaction at most: a bigger one is a bulk load, not a mix
_SUM_SLACK = 1e-6


@dataclass(frozen=True, config=STRICT)
class ChangeMix:
    """How many changes, of which operations, in which shapes. The operation shares sum to 1; an
    operation with nothing to act on (an update before any row exists) becomes an insert."""

    count: Annotated[int, Field(ge=1, le=1_000_000)] = 200  # changes over the run, beside the records
    insert: Fraction = 0.3
    update: Fraction = 0.35
    key_update: Fraction = 0.05  # an update of the key column (the record key the sink partitions by)
    delete: Fraction = 0.15
    key_change: Fraction = 0.15  # an update of the primary key: a delete and an insert downstream
    transactions: Fraction = 0.3  # of the changes, the share written inside multi-change transactions
    transaction_size: tuple[Annotated[int, Field(ge=2, le=TRANSACTION_MAX)],
                            Annotated[int, Field(ge=2, le=TRANSACTION_MAX)]] = (2, 5)
    hot: Fraction = 0.2  # of the updates, the share aimed at one hot row in a burst
    burst: Annotated[int, Field(ge=1, le=1000)] = 8  # updates of the hot row in a row
    chunk: Annotated[int, Field(ge=1, le=10_000)] = 20  # changes per write event on the timeline

    def problem(self) -> tuple[str, str] | None:
        """(field, what is wrong) for what one field cannot say alone; None when it holds."""
        total = sum(getattr(self, op) for op in OPERATIONS)
        if not math.isclose(total, 1.0, abs_tol=_SUM_SLACK):
            shares = ", ".join(f"{op} {getattr(self, op)}" for op in OPERATIONS)
            return "insert", f"the operation shares must sum to 1, not {total:g} ({shares})"
        if self.insert == 0:
            return "insert", "must be above 0: every other operation needs a row an insert made"
        low, high = self.transaction_size
        if low > high:
            return "transaction_size", f"({low}, {high}) is not (smallest, largest)"
        return None

    @property
    def operations(self) -> frozenset[str]:
        """What it writes (a key change only if its share is above 0, and so on)."""
        return frozenset(op for op in OPERATIONS if getattr(self, op) > 0)


@dataclass(frozen=True, config=STRICT)
class TargetChanges:
    """A target's ``[changes]``: what its pipeline carries of a change workload."""

    operations: tuple[Operation, ...] = ("insert",)
    # every_version: each committed version is delivered; latest_state: the final one (a poller).
    delivers: Literal["every_version", "latest_state"] = "every_version"
    # marked: each change event names its source transaction ([record] transaction), and the
    # judge holds every transaction to one mark of its own; unmarked: no such promise.
    transactions: Literal["unmarked", "marked"] = "unmarked"
    # Knobs the harness sets when a scenario writes changes (the bundled exporter's change mode).
    knobs: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")],
                Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]] = field(default_factory=dict)
    # SQL the harness runs as the administrator, after making the source table, when a scenario
    # writes changes (the change log's table and trigger a change mode reads): placeholders filled.
    prepare_sql: tuple[Annotated[str, Field(min_length=1, max_length=10_000)], ...] = ()
    # What each replica identity gives downstream, said in the target's own words (shown in reports).
    note: Annotated[str, Field(max_length=2000)] = ""

    def missing(self, wanted: frozenset[str]) -> list[str]:
        return sorted(wanted - set(self.operations))
