"""Actions at an instant: more writes, and a mid-run reconciliation (pause and resume are in
``pauses.py``, export jobs in ``exports.py``)."""

from __future__ import annotations

import dataclasses
import random
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.infra.waiting import WaitTimeout, wait_for
from harness.steps.base import STRICT, StepKind, Window, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext


@step_kind
@dataclass(frozen=True, config=STRICT)
class Write(StepKind):
    """Write more records of the scenario's profile during a phase."""

    kind_name: ClassVar[str] = "write"
    role: ClassVar = "action"
    records: Annotated[int, Field(ge=1, le=10_000_000)]

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Write:
        return cls(records=rng.choice((20, 100, 300)))

    def describe(self) -> str:
        return f"write {self.records} records"

    def deadline(self, run: StepContext) -> float:
        return self.deadline_s + self.records / 1000  # ten million rows take their time, even at a thousand a second

    def simpler(self) -> list[StepKind]:
        return [Write(records=self.records // 2)] if self.records > 1 else []

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        run.write(self.records)
        record.evidence = f"{self.records} records written"


MIN_SETTLE_S = 0.5  # a checkpoint looks at least once, however soon the next step is due


@step_kind
@dataclass(frozen=True, config=STRICT)
class Checkpoint(StepKind):
    """Reconcile mid-run: wait up to ``within_s`` for every record written so far to reach a
    sink or the dead-letter stream, then record what is delivered, in flight or missing (soaks
    place one after each quiet period; the final reconciliation still gives the verdict)."""

    kind_name: ClassVar[str] = "checkpoint"
    role: ClassVar = "action"
    within_s: Window = 10.0

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Checkpoint:
        return cls(within_s=rng.choice((2.0, 5.0)))

    def describe(self) -> str:
        return "checkpoint reconciliation"

    def deadline(self, run: StepContext) -> float:
        return self.within_s + self.deadline_s  # it waits up to within_s, then reconciles

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        from harness.judge.reconcile import DELIVERED_CORRUPTED, LOST, reconcile
        from harness.report.result import CheckpointPoint

        exporter = run.live_exporter()
        # The timeline is paused while this runs, so the ledger holds exactly what was written so far.
        ok_ids = run.ledger.ids("ok")
        state: dict[str, Any] = {}

        def settled() -> bool:
            state["sink"], state["letters"], ids = run.settled(exporter)
            return ok_ids <= ids

        t0 = time.monotonic()
        # Inside the timeline the wait ends when the next fault is due to be applied or removed:
        # a checkpoint inside a table lock's window would otherwise hold the lock on for within_s.
        due = run.next_event_due
        within = self.within_s if due is None else max(MIN_SETTLE_S, min(self.within_s, due - t0))
        if within < self.within_s:
            record.evidence = f"waited {within:.1f}s of {self.within_s}s: the timeline's next step was due"
        try:
            wait_for(settled, timeout=within, interval=0.5, what="checkpoint: records written so far to settle")
            in_time = True
        except WaitTimeout:
            in_time = False  # what is still missing is reported below; the end judges loss
        evidence = run.buffer_evidence()
        job_stage = run.target.sinks.get("export_dead_letter_stage")
        outcome = reconcile(run.ledger, run.plain_records(state["sink"]),
                            run.plain_letters([x for x in state["letters"] if x.stage != job_stage]), evidence)
        missing = outcome.classes.get(LOST, [])
        in_flight = [i for i in missing if i in evidence.present or i in evidence.pending]  # still in the buffer
        point = CheckpointPoint(
            at=run.now(), written=len(ok_ids), settled_in_time=in_time, settle_s=round(time.monotonic() - t0, 3),
            missing=len(missing), missing_ids=sorted(missing)[:20],
            missing_hops=sorted({outcome.lost_hops[i] for i in missing}), in_flight=len(in_flight),
            corrupted=outcome.count(DELIVERED_CORRUPTED),
            # Rows Locust is writing reach the ledger when its step ends: until then they are
            # not "unexpected", they are not known yet (the end judges them).
            unexpected=0 if run.loads else len(outcome.unexpected), load_running=bool(run.loads))
        run.result.checkpoints.append(point)
        record.result = dataclasses.asdict(point)
