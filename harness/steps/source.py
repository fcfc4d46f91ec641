"""Faults in how the source is written: commits that do not come in id order."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import psycopg
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.steps.base import STRICT, StepKind, World
from harness.steps.registry import kind_of, step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.rig.workload import HeldWrite
    from harness.steps.context import StepContext


# The table lock modes an INSERT's ROW EXCLUSIVE lock waits behind.
BLOCKS_INSERTS = frozenset({"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"})


@step_kind
@dataclass(frozen=True, config=STRICT)
class HeldTransaction(StepKind):
    """A writer takes ids for ``records`` rows in a transaction it keeps open for the window, while
    other writers commit ``then_write`` rows with higher ids at once (and the workload goes on);
    the transaction commits when the window ends. Commits out of id order: a reader that pages by
    id alone moves past the held ids before they are visible and never sees them."""

    kind_name: ClassVar[str] = "held_transaction"
    records: Annotated[int, Field(ge=1, le=100_000)] = 5
    then_write: Annotated[int, Field(ge=0, le=1_000_000)] = 50

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> HeldTransaction:
        return cls(records=rng.choice((1, 5, 20)), then_write=rng.choice((10, 50, 100)))

    def describe(self) -> str:
        return f"transaction of {self.records} rows held open while {self.then_write} later rows commit"

    def waits_for(self, other: StepKind) -> str | None:
        mode = getattr(other, "mode", None)
        if kind_of(other) == "postgres_lock_table" and mode in BLOCKS_INSERTS:
            return (f"its rows wait for the {mode} lock on the source table, which is released only when the lock "
                    "step's window ends")
        return None

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        began = run.ledger.tick()  # its rows are acknowledged at commit: concurrent with what commits meanwhile
        try:
            held = run.writer.begin(run.next_rows(self.records))
        except psycopg.Error as exc:
            raise HarnessError(f"scenario {run.scenario.name}: cannot open the held transaction: {exc}") from exc
        run.closers.append(held.rollback)  # never left open, whatever happens before remove()
        at = run.now()
        later = run.writer.insert(run.next_rows(self.then_write)) if self.then_write else []
        run.record_writes(later, at)
        later_ids = [w.record_id for w in later if w.record_id is not None]
        record.evidence = (f"transaction open holding ids {held.lowest_id}..{max(held.ids.values())}; "
                           f"{len(later_ids)} later rows committed"
                           + (f" with ids {min(later_ids)}..{max(later_ids)}" if later_ids else ""))
        return held, began

    def remove(self, run: StepContext, handle: tuple[HeldWrite, int], record: StepRecord) -> None:
        held, began = handle
        at = run.now()
        committed = held.commit()
        run.record_writes(committed, at, began)
        record.evidence += f"; committed: {committed[0].outcome if committed else 'nothing'}"
