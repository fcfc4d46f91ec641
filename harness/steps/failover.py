"""Failover of a replicated server: the client link is moved to a replica that was promoted.

``redis_failover``: a replica of the buffer's Redis (started when the scenario prepares, in sync
before the exporter starts) stops receiving the primary's writes for the window (its replication
link cut: asynchronous replication falling behind, on purpose), and at the window's end is
promoted: the clients' proxy points at it, their connections are cut, and the old primary becomes
its replica, throwing away what never reached it. The evidence is read back from both nodes: the
offsets at promotion and the gap between them, the roles after.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic.dataclasses import dataclass

from harness.model.capabilities import Need
from harness.steps.base import STRICT, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext


@step_kind
@dataclass(frozen=True, config=STRICT)
class RedisFailover(StepKind):
    """Redis fails over to its replica at the end of the window; ``lag = "cut"`` cuts the
    replication link for the window first (the replica misses what was written meanwhile),
    ``"none"`` fails over to a replica in sync (a planned switchover: nothing may be lost)."""

    kind_name: ClassVar[str] = "redis_failover"
    fails_over: ClassVar[str] = "redis"
    lag: Literal["cut", "none"] = "cut"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> RedisFailover:
        return cls(lag=rng.choice(("cut", "cut", "none")))

    def describe(self) -> str:
        return "redis failed over to a replica" + (" that fell behind" if self.lag == "cut" else " in sync")

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.replica("redis"), Need.link("redis")})

    def holds(self) -> frozenset[str]:
        return frozenset({"redis-topology"})  # one failover at a time, and never beside a restart of redis

    def prepare(self, run: StepContext) -> None:
        run.stack.backend.start_replica("redis")

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        if self.lag == "cut":
            run.stack.backend.cut_replication("redis", True)
            record.evidence = "replication link to the replica cut"
        else:
            record.evidence = "replica in sync"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        evidence = run.stack.backend.fail_over("redis")
        record.result = evidence
        record.evidence += (f"; promoted {evidence['promoted']}: old primary at offset "
                            f"{evidence['old_primary_offset']}, replica at {evidence['replica_offset']} "
                            f"({evidence['gap_bytes']} bytes never replicated)")
