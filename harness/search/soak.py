"""``faultline soak``: a continuous workload under a seeded random fault schedule.

The schedule is drawn from a catalogue of faults with ``random.Random(seed)``: quiet periods
and fault windows alternate, one fault at a time (so a failing soak shrinks to the faults that
matter), a checkpoint reconciliation sits in the quiet period after each fault, and the runner
heals everything at the end. Same seed, same duration, same catalogue: same schedule, byte for
byte (the schedule is a ``Scenario``, so it is written, replayed and shrunk like any incident).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.catalogue.scenario import (
    Checkpoint,
    ClockDrift,
    ClockJump,
    Expect,
    FreezeExporter,
    HeldTransaction,
    KafkaProduceError,
    KafkaRequestFault,
    KillExporter,
    LinkDown,
    Load,
    PostgresStatementError,
    RedisCommandError,
    RestartService,
    Scenario,
    Step,
    Toxic,
    Workload,
    is_fault,
)
from harness.errors import HarnessError
from harness.model.changes import ChangeMix


class SoakError(HarnessError):
    """A soak was asked for something it cannot do (bad duration, unknown fault name)."""


Draw = Callable[[random.Random], object]


def _latency(link: str) -> Draw:
    return lambda rng: Toxic(link, "latency", attributes={"latency": rng.choice((100, 250, 500)),
                                                          "jitter": rng.choice((0, 50, 100))})


# Every entry: how to draw the fault, and the range of its window in seconds.
CATALOGUE: dict[str, tuple[Draw, tuple[float, float]]] = {
    "postgres_latency": (_latency("postgres"), (3, 10)),
    "redis_latency": (_latency("redis"), (3, 10)),
    "kafka_latency": (_latency("kafka"), (3, 10)),
    # etcd-like timeouts: the connection stays open and nothing comes back.
    "postgres_timeout": (lambda rng: Toxic("postgres", "timeout", attributes={"timeout": 0}), (2, 6)),
    "redis_timeout": (lambda rng: Toxic("redis", "timeout", attributes={"timeout": 0}), (2, 6)),
    "kafka_reset": (lambda rng: Toxic("kafka", "reset_peer", attributes={"timeout": 0}), (2, 6)),
    "redis_reset": (lambda rng: Toxic("redis", "reset_peer", attributes={"timeout": 0}), (2, 6)),
    "postgres_down": (lambda rng: LinkDown("postgres"), (2, 8)),
    "redis_down": (lambda rng: LinkDown("redis"), (2, 8)),
    "kafka_down": (lambda rng: LinkDown("kafka"), (2, 8)),
    "exporter_kill": (lambda rng: KillExporter(), (1, 4)),
    "exporter_freeze": (lambda rng: FreezeExporter(), (2, 6)),
    "redis_restart": (lambda rng: RestartService("redis"), (1, 4)),
    "kafka_restart": (lambda rng: RestartService("kafka"), (2, 6)),
    "postgres_restart": (lambda rng: RestartService("postgres"), (1, 4)),
    # Commits out of id order: lower ids held open while later rows commit and are read.
    "out_of_order_commit": (lambda rng: HeldTransaction(records=rng.choice((1, 5, 20)),
                                                        then_write=rng.choice((20, 100))), (1, 4)),
}
# One request at a time, and the clock: transient answers a long-running pipeline meets now and then.
CATALOGUE |= {
    "kafka_partition_errors": (lambda rng: KafkaProduceError(
        error=rng.choice(("NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS", "REQUEST_TIMED_OUT")), times=0,
        probability=0.3, seed=rng.randrange(1, 1_000_000)), (2, 6)),
    "kafka_answer_lost": (lambda rng: KafkaRequestFault(api="produce", answer="cut", times=rng.choice((1, 3)),
                                                      seed=rng.randrange(1, 1_000_000)), (2, 6)),
    "redis_command_errors": (lambda rng: RedisCommandError(
        command=rng.choice(("XADD", "XACK", "XREADGROUP")), answer=rng.choice(("BUSY", "LOADING", "OOM")), times=0,
        probability=0.2, seed=rng.randrange(1, 1_000_000)), (2, 6)),
    "postgres_statement_errors": (lambda rng: PostgresStatementError(
        answer=rng.choice(("40001", "40P01", "57014")), times=rng.choice((1, 3)), seed=rng.randrange(1, 1_000_000)),
        (2, 6)),
    "clock_step": (lambda rng: ClockJump(seconds=rng.choice((-3600, -30, 30, 3600))), (2, 6)),
    "clock_drift": (lambda rng: ClockDrift(rate=rng.choice((0.5, 2.0))), (3, 10)),
}
QUIET_S = (4.0, 10.0)
SHORTEST_WINDOW_S = 0.5  # a window scaled below this would be applied and removed in one breath
SEED_MAX = 2**63 - 1  # the seeds a workload carries
RECORDS_MAX = 10_000_000  # the most a workload writes (harness.model.expect.Count)


def available(lacks: Callable[[object], str | None]) -> tuple[str, ...]:
    """The catalogue's faults a target and backend can perform (a soak's default): one the
    backend cannot do would skip the whole soak, and one aimed at a server the target does not
    use would test nothing for hours."""
    probe = random.Random(0)
    return tuple(name for name, (draw, _window) in CATALOGUE.items() if lacks(draw(probe)) is None)


CHANGES_MAX = 1_000_000  # ChangeMix.count's bound


@dataclass(frozen=True)
class SoakPlan:
    duration_s: float
    seed: int
    faults: tuple[str, ...] = tuple(CATALOGUE)
    rate: int = 100  # records per second from the harness's own writer
    load_users: int = 0  # Locust source-writer users for the whole soak, on top of the rate
    load_workers: int = 0
    window_scale: float = 1.0  # longer or shorter fault windows than the catalogue's
    exporter_env: tuple[tuple[str, str], ...] = ()  # raw settings for the exporter under soak (target-specific)
    knobs: tuple[tuple[str, str], ...] = ()  # harness knobs (see harness.model.knobs)
    change_rate: int = 0  # changes per second beside the records (a change workload; 0: inserts only)

    def validate(self) -> SoakPlan:
        if not 10 <= self.duration_s <= 7 * 24 * 3600:
            raise SoakError(f"soak duration must be between 10s and 7 days, not {self.duration_s}s")
        unknown = [f for f in self.faults if f not in CATALOGUE]
        if unknown or not self.faults:
            raise SoakError(f"unknown fault(s) {unknown or '(none given)'}; the catalogue has: "
                            f"{', '.join(CATALOGUE)}")
        if self.rate < 1 or self.load_users < 0 or self.load_workers < 0 or not 0.01 <= self.window_scale <= 100:
            raise SoakError("rate must be >= 1, load users and workers >= 0, window scale within [0.01, 100]")
        if not 0 <= self.seed <= SEED_MAX:
            raise SoakError(f"--seed must be within 0..{SEED_MAX}, not {self.seed}")
        records = int(self.rate * self.duration_s)
        if records > RECORDS_MAX:
            raise SoakError(f"--rate {self.rate} for --duration {self.duration_s:.0f}s writes {records} records; at "
                            f"most {RECORDS_MAX} are judged one by one: lower the rate or the duration")
        changes = int(self.change_rate * self.duration_s)
        if self.change_rate < 0 or changes > CHANGES_MAX:
            raise SoakError(f"--change-rate {self.change_rate} for --duration {self.duration_s:.0f}s writes {changes} "
                            f"changes; 0..{CHANGES_MAX} are judged per row: lower the rate or the duration")
        return self

    def change_mix(self) -> ChangeMix | None:
        """The soak's change workload: the default mix at ``change_rate`` a second, or None."""
        count = int(self.change_rate * self.duration_s)
        return ChangeMix(count=count, chunk=max(1, min(10_000, self.change_rate // 2))) if count else None


def parse_duration(text: str) -> float:
    """``600``, ``90s``, ``10m``, ``2h`` or ``1h30m`` to seconds."""
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        raise SoakError(f"cannot read duration {text!r}; write e.g. 600, 90s, 10m or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def schedule(plan: SoakPlan) -> Scenario:
    """The soak as a scenario: deterministic in (duration, seed, faults, rate, load)."""
    plan = plan.validate()
    rng = random.Random(f"faultline-soak:{plan.seed}")
    steps: list[Step] = []
    t = round(rng.uniform(*QUIET_S), 1)
    end_by = plan.duration_s - QUIET_S[0]  # the last window closes before the end: time to settle
    while True:
        name = rng.choice(plan.faults)
        draw, (low, high) = CATALOGUE[name]
        window = max(SHORTEST_WINDOW_S, round(rng.uniform(low, high) * plan.window_scale, 1))
        if t + window > end_by:
            break
        steps.append(Step("during", draw(rng), at=t, duration=window))  # type: ignore[arg-type]
        quiet = round(rng.uniform(*QUIET_S), 1)
        # Reconcile in the quiet period that follows: it must not run into the next window.
        steps.append(Step("during", Checkpoint(within_s=max(1.0, quiet - 1.5)), at=round(t + window + 0.5, 1)))
        t = round(t + window + quiet, 1)
    if plan.load_users:
        steps.insert(0, Step("during", Load("source", users=plan.load_users, workers=plan.load_workers,
                                            wait_s=0.1, rows_per_write=5), at=0.0, duration=plan.duration_s))
    records = int(plan.rate * plan.duration_s)
    faults = [s for s in steps if is_fault(s)]
    return Scenario(
        name=f"soak_seed{plan.seed}_{int(plan.duration_s)}s",
        description=f"soak of {plan.duration_s:.0f}s, seed {plan.seed}: {len(faults)} faults drawn from "
                    f"{len(plan.faults)} kinds, {plan.rate} records/s"
                    + (f" plus {plan.load_users} Locust writers" if plan.load_users else ""),
        workload=Workload(records=records, profile="mixed", chunk=max(1, plan.rate // 2), seed=plan.seed,
                          before_fraction=min(0.05, 200 / max(records, 1)), changes=plan.change_mix()),
        steps=tuple(steps),
        expect=Expect(no_resource_leak=True, recovered_within_s=120.0, protocol_faults_met=False),
        exporter_env=dict(plan.exporter_env), knobs=dict(plan.knobs),
        during_s=plan.duration_s,
    ).validate()
