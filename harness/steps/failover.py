"""Failover of a replicated server: the client link is moved to a replica that was promoted
(Redis here; Postgres below; Kafka's leader elections in harness.steps.kafka_failover).

``redis_failover``: a replica of the buffer's Redis (started when the scenario prepares, in sync
before the exporter starts) stops receiving the primary's writes for the window (its replication
link cut: asynchronous replication falling behind, on purpose), and at the window's end is
promoted: the clients' proxy points at it, their connections are cut, and the old primary becomes
its replica, throwing away what never reached it. The evidence is read back from both nodes: the
offsets at promotion and the gap between them, the roles after.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import psycopg
from psycopg import sql
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

    def watch(self, run: StepContext) -> Callable[[], dict[str, float]]:
        return lambda: _lag(run, "redis", "redis replica behind (bytes)")

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


@step_kind
@dataclass(frozen=True, config=STRICT)
class PostgresFailover(StepKind):
    """The source's Postgres fails over to its streaming standby at the window's end.

    ``lag = "none"``: a planned switchover: the primary shut down cleanly (its standby received
    everything), the standby promoted; nothing committed is lost, and the exporter must reconnect
    through its proxy, now pointing at the new primary. ``lag = "cut"``: the standby's replication
    link is cut for the window, then the primary killed and fenced and the standby promoted with
    what it had: what the primary committed after the cut is gone from the source itself. Those
    acknowledged writes are read back from the new primary after the failover, and the ones it
    lacks are judged neither way (the exporter may have read them before, or not); how many is
    evidence. Logical replication slots stay behind on the old primary (PostgreSQL 15).

    ``old_primary = "fenced"`` leaves the old primary down for the rest of the scenario;
    ``"rejoined"`` rewinds it onto the new primary's timeline (``pg_rewind``, throwing away what the
    new primary never got) and starts it as the new primary's standby, as an operator restores
    redundancy after a failover."""

    kind_name: ClassVar[str] = "postgres_failover"
    fails_over: ClassVar[str] = "postgres"
    deadline_s: ClassVar[float] = 120.0
    lag: Literal["cut", "none"] = "none"
    old_primary: Literal["fenced", "rejoined"] = "fenced"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresFailover:
        return cls(lag=rng.choice(("none", "cut")), old_primary=rng.choice(("fenced", "rejoined")))

    def describe(self) -> str:
        rejoined = ", then rejoined as its standby" if self.old_primary == "rejoined" else ""
        return ("postgres failed over to a standby that fell behind (old primary killed" + rejoined + ")"
                if self.lag == "cut" else
                "postgres switched over to its standby (old primary shut down cleanly" + rejoined + ")")

    def needs(self) -> frozenset[Need]:
        rewind = {Need.tool("pg_rewind")} if self.old_primary == "rejoined" else set()
        return frozenset({Need.replica("postgres"), Need.link("postgres"), *rewind})

    def holds(self) -> frozenset[str]:
        return frozenset({"postgres-topology", "whether postgres runs"})

    def loses_source_writes(self) -> bool:
        return self.lag == "cut"

    def prepare(self, run: StepContext) -> None:
        run.stack.backend.start_replica("postgres")

    def watch(self, run: StepContext) -> Callable[[], dict[str, float]]:
        return lambda: _lag(run, "postgres", "postgres standby behind (bytes of WAL)")

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        if self.lag == "cut":
            run.stack.backend.cut_replication("postgres", True)
        record.evidence = "replication link to the standby cut" if self.lag == "cut" else "standby streaming"
        ledger = run.ledger
        return None if ledger.base is None else ledger.base + ledger.span  # the next id the source hands out

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        acknowledged = run.ledger.ids("ok")
        evidence = run.stack.backend.fail_over("postgres", planned=self.lag == "none")
        lost = source_lost(run, acknowledged, handle) if self.lag == "cut" else set()
        evidence["acknowledged_writes_lost_at_source"] = run.ledger.mark_indeterminate(lost)
        if self.old_primary == "rejoined":
            evidence["rejoin"] = run.stack.backend.rejoin_old_primary("postgres")
        record.result = evidence
        gap = evidence["gap_bytes"]
        replayed = ("the primary's position unknown" if gap is None else "nothing missing" if gap <= 0
                    else f"{gap} bytes of WAL never replayed")
        record.evidence += (f"; old primary {evidence['old_primary']} at WAL {evidence['old_primary_lsn']}, standby "
                            f"promoted at {evidence['standby_lsn']} ({replayed}); "
                            f"{evidence['acknowledged_writes_lost_at_source']} acknowledged writes gone from the "
                            f"source (judged neither way)")
        if self.old_primary == "rejoined":
            rejoin = evidence["rejoin"]
            record.evidence += (f"; old primary rewound ({rejoin['rewound']}) and streaming from the new one "
                                f"through {rejoin['streams_through']}")


def _lag(run: StepContext, service: str, name: str) -> dict[str, float]:
    lag = run.stack.backend.replication_lag(service)
    return {} if lag is None else {name: lag}


def source_lost(run: StepContext, acknowledged: set[int], since: int | None) -> set[int]:
    """Of the writes acknowledged before the failover, those the new primary does not hold."""
    candidates = {i for i in acknowledged if since is None or i >= since - LOST_LEAD}
    if not candidates:
        return set()
    query = sql.SQL("SELECT id FROM {} WHERE id >= %s").format(sql.Identifier(run.ctx.source_table))
    with psycopg.connect(run.stack.postgres_dsn(proxied=False), autocommit=True, connect_timeout=10) as conn:
        held = {int(row[0]) for row in conn.execute(query, (min(candidates),)).fetchall()}
    return candidates - held


LOST_LEAD = 10_000  # ids handed out before the cut may commit after it (a slow transaction): looked at too
