"""What a run records as it goes: each check with its verdict, each step with its times and
evidence (chaostoolkit's journal, typed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    # False: the invariant cannot be judged on this target (no metrics to compare): never a
    # violation, and shown as "n/a" with the reason rather than as held.
    applicable: bool = True


@dataclass
class StepRecord:
    phase: str
    description: str
    applied_at: float | None = None
    removed_at: float | None = None
    evidence: str = ""
    result: dict[str, Any] | None = None
    window_s: float | None = None  # how long it was planned to last (faults and loads)
    fault: bool = False  # a fault (not an action or a load): duplicates are attributed to these
    # Faults only: records written (acknowledged) but not yet in the sink or dead-lettered when the
    # fault was applied, and records acknowledged while its window was open. A fault that meets no
    # data cannot show a loss (None: could not be read).
    in_flight_at_apply: int | None = None
    written_during: int | None = None
    fails_over: str = ""  # the server a failover step moved to a replica ("" for any other step)

    @property
    def met_data(self) -> int | None:
        """Records exposed to this fault: in flight when it came, or written while it lasted."""
        if self.in_flight_at_apply is None and self.written_during is None:
            return None
        return (self.in_flight_at_apply or 0) + (self.written_during or 0)


# -- what steps observe: evidence the registered checks judge (harness.checks) -------------------
@dataclass(frozen=True)
class FlowMark:
    """How far the pipeline had got at one instant, read from outside the exporter: each sink
    stream's end (a partition's next offset, a file's line count), and which exporter process
    was running (a restarted process starts unpaused)."""

    wall: float  # epoch seconds (the buffer's entry ids carry Redis's clock in ms: the same clock)
    sink: dict[str, int]
    exporter_starts: int
    source: SourceStatements | None = None  # None: the target reads its source another way (replication)


@dataclass(frozen=True)
class SourceStatements:
    """The exporter's statements on its source table so far, by Postgres's own counters
    (pg_stat_statements calls per statement text); ``unmeasured`` says why there are none."""

    calls: dict[str, int] = field(default_factory=dict)
    unmeasured: str = ""


@dataclass
class PauseObservation:
    """One pause: how it was answered, and what the pipeline did while it was in force."""

    grace_s: float
    within_s: float  # the grace plus the margin it must be acknowledged within
    status: int | None
    state: str | None  # what the exporter said (or the state Connect reached)
    elapsed_s: float
    acknowledged: bool  # answered "paused" (or reached PAUSED), however late
    drained: bool | None  # the exporter said it was idle when it answered (None: it does not say)
    detail: str = ""
    at_ack: FlowMark | None = None
    pending_at_ack: int = 0  # records taken from the buffer but not settled when it was acknowledged
    at_end: FlowMark | None = None  # just before the resume was asked (or healing began)
    state_at_end: str | None = None  # what the exporter said of its pause then
    ended_by: str = ""  # "resume" or "heal"

    @property
    def open(self) -> bool:
        return self.acknowledged and self.at_end is None


@dataclass(frozen=True)
class FaultReach:
    """What a fault answered through a protocol proxy met: the requests its rule matched and those
    it answered, and whether the target's pipeline goes through that server at all."""

    step: str
    server: str
    matched: int
    answered: int
    server_used: bool


@dataclass(frozen=True)
class ActionAnswer:
    """An action's request and what came back, for the check that owns the action's name
    (``resume``, ``export:NAME``, ``export_admission``, ``exports_complete``): the step measures,
    the check decides."""

    check: str
    expected: str  # what a correct exporter does, in words the report shows
    failures: tuple[str, ...]  # each way the answer fell short of it (empty: it did not)
    detail: str


@dataclass(frozen=True)
class ProcessEvidence:
    """The exporter process as healing found it."""

    starts: int
    planned_kills: int
    died: bool  # it exited by itself before healing
    exit_code: int | None


@dataclass
class Observations:
    pauses: list[PauseObservation] = field(default_factory=list)
    answers: list[ActionAnswer] = field(default_factory=list)
    reaches: list[FaultReach] = field(default_factory=list)
