"""Load: Locust users for the step's window, run as a subprocess (importing locust patches the
standard library, so the harness never does)."""

from __future__ import annotations

import dataclasses
import random
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.model.capabilities import Need
from harness.steps.base import STRICT, Problem, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.rig.load import LoadRun
    from harness.steps.context import StepContext

LOAD_KINDS = ("source", "api")


@step_kind
@dataclass(frozen=True, config=STRICT)
class Load(StepKind):
    """Locust load for the step's window. ``kind`` "source": users write rows of
    ``rows_per_write`` into the source table (every write goes into the ledger with its outcome);
    "api": users submit small export jobs and poll them. ``workers`` > 0 runs Locust's
    distributed mode (a master and that many worker processes)."""

    kind_name: ClassVar[str] = "load"
    role: ClassVar = "load"
    kind: Literal["source", "api"] = "source"
    users: Annotated[int, Field(ge=1, le=10_000)] = 4
    spawn_rate: Annotated[float, Field(gt=0, le=10_000)] = 10.0
    wait_s: Annotated[float, Field(ge=0, le=3600)] = 0.05
    rows_per_write: Annotated[int, Field(ge=1, le=100_000)] = 10
    workers: Annotated[int, Field(ge=0, le=64)] = 0

    draw_share: ClassVar[float] = 0.1  # Locust takes a moment to start: now and then

    def simpler(self) -> list[StepKind]:
        return [dataclasses.replace(self, users=self.users // 2)] if self.users > 1 else []

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Load:
        return cls(kind=rng.choice(("source", "api")), users=rng.choice((2, 4)), wait_s=0.1, rows_per_write=5)

    def describe(self) -> str:
        return f"locust {self.kind} load: {self.users} users" + (
            f" on {self.workers} workers" if self.workers else "")

    def check(self) -> Problem | None:
        return None

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.api("exports")} if self.kind == "api" else ())

    def deadline(self, run: StepContext) -> float:
        # Its removal reads back what Locust wrote, which grows with the window (a week's soak).
        return self.deadline_s + run.scenario.during_s / 10

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        from harness.rig.load import LoadRun

        n, workload = len(run.loads), run.scenario.workload
        load = LoadRun(self, record.window_s or run.scenario.during_s, run.ctx.workdir / f"load-{n}",
                       dsn=run.stack.postgres_dsn(proxied=False), table=run.ctx.source_table,
                       base_url=f"http://127.0.0.1:{run.ctx.http_port}", exports_path=run.target.exports_path,
                       key_prefix=f"{run.scenario.name}-load{n}", profile=workload.profile,
                       size=workload.size, seed=workload.seed + n, tokens_file=run.ctx.api_tokens_file)
        run.loads.append(load)
        load.start()
        record.evidence = f"locust running, pid {load.pid}"
        return load

    def remove(self, run: StepContext, handle: LoadRun, record: StepRecord) -> None:
        run.loads.remove(handle)
        if handle.started + handle.duration_s - time.monotonic() > 1.0:
            handle.stop()  # removed before its window ends (Ctrl-C, an error): stop it now, not later
        summary = handle.finish()
        journal = handle.journal(run.writer.resolve)
        for written in journal:
            run.ledger.add(written.record_id, written.digest, written.outcome)
        summary.writes, summary.resolved_from_source = len(journal), handle.resolved
        run.result.load.append(summary)
        record.result = dataclasses.asdict(summary)
