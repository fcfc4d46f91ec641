"""What a run produces, typed: the verdict, every check and step, the ledger's summary, the
exporter's counters, the charted series, Locust's statistics and the exporter's resources.

These dataclasses are the one shape the CLI, report.json, junit.xml, summary.md, report.html
and ``faultline compare`` read. report.json is them serialised under ``schema: 2``
(ARCHITECTURE.md, "report.json"); reading one back validates it against the same types, so a
file from another version or a hand-edited one is refused with the field that is wrong instead
of half-drawn.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from harness import faultline_version
from harness.report.findings import ChangeSummary, FailoverLoss, LossStory
from harness.report.journal import Check, StepRecord
from harness.report.resources import Sample, Trend

SCHEMA = 2  # 2: a scenario's ``changes`` (change workloads); schema 1 reports are read too
READABLE = (1, 2)


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"  # the exporter violated a check: exit 1
    ERROR = "error"  # the harness could not judge (a server would not start, a bug here): exit 2
    SKIPPED = "skipped"  # this backend or target cannot perform a step; the reason is in ``skipped``


Point = tuple[float, float]  # (seconds since the scenario started, value)


@dataclass
class LedgerSummary:
    """The record-by-record reconciliation, summarised (the ids are samples, the counts exact)."""

    ok: bool = True
    counts: dict[str, int] = field(default_factory=dict)  # per anomaly class (reconcile.py)
    duplicates: int = 0
    unexpected: int = 0
    recovered_indeterminate: int = 0
    order_inversions: int = 0  # first deliveries overtaken by a later write of their key
    inversion_samples: list[str] = field(default_factory=list)
    duplicates_by_window: dict[str, int] = field(default_factory=dict)  # fault window -> redeliveries after it
    samples: dict[str, list[int]] = field(default_factory=dict)  # class -> first record ids
    lost_hops: dict[str, str] = field(default_factory=dict)  # record id -> hop where it was lost
    dead_letter_samples: dict[str, str] = field(default_factory=dict)  # record id -> reason
    misrouted_samples: dict[str, str] = field(default_factory=dict)  # record id -> why it was deliverable
    letters_verified: int = 0  # dead letters whose reason was checked and holds
    letters_trusted: int = 0  # declared reasons taken on trust (declared so, or too close to a limit to call)
    letters_undeclared: int = 0  # dead letters whose reason the target does not declare (a violation)
    unexpected_samples: list[str] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)  # write outcome -> count (ok, failed, ...)
    tap_error: str | None = None
    resolved_from_source: int = 0  # writes of unknown outcome read back from the source
    resolve_error: str | None = None

    def count(self, cls: str) -> int:
        return self.counts.get(cls, 0)


@dataclass
class MetricsSnapshot:
    """The exporter's own counters at the end, next to what the sinks hold."""

    delivered: float
    dead_lettered: float
    sink_messages: int
    dead_letter_entries: int
    exporter_starts: int


@dataclass
class Series:
    """What report.html charts, bucketed or sampled over the scenario's time."""

    bucket_s: float = 0.5
    delivered_per_s: list[Point] = field(default_factory=list)
    latency_p50_ms: list[Point] = field(default_factory=list)
    buffer_length: list[Point] = field(default_factory=list)
    errors_per_s: list[Point] = field(default_factory=list)
    # What failover steps watch while the run lasts (a partition's leader, the ISR's size, a
    # replica's lag in bytes), by the name each one gives it.
    topology: dict[str, list[Point]] = field(default_factory=dict)


@dataclass
class RequestStats:
    """One row of Locust's statistics (``Aggregated`` included)."""

    name: str
    type: str
    requests: int
    failures: int
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass
class LoadStats:
    kind: str
    users: int
    workers: int
    exit_code: int | None
    requests: list[RequestStats] = field(default_factory=list)
    writes: int = 0  # rows Locust wrote, each put in the ledger
    resolved_from_source: int = 0


@dataclass
class Resources:
    samples: list[Sample] = field(default_factory=list)
    sample_errors: int = 0
    trends: list[Trend] = field(default_factory=list)
    not_judged: str | None = None  # why no trend was judged (too few samples), when none was

    @property
    def leaks(self) -> list[Trend]:
        return [t for t in self.trends if t.leak]


@dataclass
class CheckpointPoint:
    """A mid-run reconciliation (the ``checkpoint`` step)."""

    at: float
    written: int
    settled_in_time: bool
    settle_s: float
    missing: int
    missing_ids: list[int]
    missing_hops: list[str]
    in_flight: int
    corrupted: int
    unexpected: int
    load_running: bool


@dataclass
class SteadyState:
    healthy_before: bool | None = None
    flowing_before: bool | None = None
    records_before: int | None = None
    running_during: bool | None = None
    healthy_after: bool | None = None


@dataclass
class ScenarioResult:
    name: str
    description: str
    incident: str | None
    verdict: Verdict = Verdict.ERROR
    checks: list[Check] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    ledger: LedgerSummary | None = None  # None: the run never got as far as reconciling
    metrics: MetricsSnapshot | None = None
    steady_state: SteadyState = field(default_factory=SteadyState)
    duration_s: float = 0.0
    stack: int = 1  # which of the run's stacks played it (-j N: 1..N)
    started_s: float = 0.0  # when it started, seconds into the run: with duration_s, what ran beside it
    error: str | None = None  # verdict error: what went wrong in the harness
    skipped: str | None = None  # verdict skipped: why this backend or target cannot run it
    log_excerpt: list[str] = field(default_factory=list)
    series: Series | None = None
    recovery_s: float | None = None
    interrupted: bool = False
    checkpoints: list[CheckpointPoint] = field(default_factory=list)
    resources: Resources | None = None
    load: list[LoadStats] = field(default_factory=list)
    report_errors: list[str] = field(default_factory=list)  # reports about it that could not be written
    # Where its data is, to recount by hand: namespace, source table, topic, streams, workdir.
    names: dict[str, str] = field(default_factory=dict)
    # Every record id of each violation class (the ledger keeps ten): written beside report.json
    # (ids/<scenario>.json), not inside it.
    violation_ids: dict[str, list[int]] = field(default_factory=dict, repr=False)
    # The exporter's reaction, for explore's signatures: each of the target's counters at the end
    # (by the target's [metrics] key) and the kinds of warning and error it logged.
    counters: dict[str, float] = field(default_factory=dict)
    log_kinds: list[str] = field(default_factory=list)
    # A failure replayed before it was written up: of that many replays, how many failed the same
    # way ("2/3"); "" when it was not replayed.
    replayed: str = ""
    loss_story: LossStory | None = None  # told for the first lost record, when records were lost
    changes: ChangeSummary | None = None  # the change workload judged per row (schema 2; None: none written)
    failover_losses: list[FailoverLoss] = field(default_factory=list)  # lost records a failover's span holds

    @property
    def rate_said(self) -> str:
        """How reliably it fails, as a person reads it ("" when it passed or was not replayed)."""
        if self.verdict is not Verdict.FAIL or not self.replayed:
            return ""
        failed, _runs = self.replayed.split("/")
        return f"reproduces {self.replayed}" + (", found once" if failed == "0" else "")

    def __post_init__(self) -> None:
        self.verdict = Verdict(self.verdict)  # "fail" given as text is the enum all the same

    @property
    def violations(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def reason(self) -> str | None:
        """Why it did not pass for a reason other than a check (a harness error or a skip)."""
        return self.skipped if self.verdict is Verdict.SKIPPED else self.error

    def to_dict(self) -> dict[str, Any]:
        return _SCENARIO.dump_python(self, mode="json")


@dataclass
class ExploreFailure:
    """A run of ``faultline explore`` that violated a check: its group, its incident files and how
    to replay it."""

    run: int
    name: str
    violated: list[str]
    step_kinds: list[str]
    incident: str
    minimal: str | None = None
    replay: str = ""
    same_as: int | None = None  # an earlier failure of the same group (same checks, same step kinds)
    rate: str = ""  # of its replays, how many failed the same way ("3/5"); "" when not replayed
    rate_said: str = ""  # the rate and what amplifying did, as a person reads it
    amplified: str | None = None  # the amplified variant's incident file
    amplified_rate: str = ""  # of its fresh replays, how many failed the same way
    amplified_changes: list[str] = field(default_factory=list)


@dataclass
class ExploreSummary:
    """What an explore run drew and saw: coverage of the step vocabulary and the signatures."""

    seed: int
    runs: int
    failures: list[ExploreFailure] = field(default_factory=list)
    harness_errors: int = 0  # runs the harness could not judge (not counted as the exporter's)
    kinds: dict[str, int] = field(default_factory=dict)  # step kind -> runs it was in
    never_drawn: dict[str, str] = field(default_factory=dict)  # step kind -> why explore never drew it
    overlaps: dict[str, int] = field(default_factory=dict)  # "kind + kind" -> runs where their windows overlapped
    inside: dict[str, int] = field(default_factory=dict)  # "action in fault" -> runs
    signatures: dict[str, int] = field(default_factory=dict)  # reaction signature -> runs
    distinct_over_time: list[tuple[int, int]] = field(default_factory=list)  # (run, distinct signatures so far)
    mutated: int = 0  # runs drawn by mutating a corpus entry rather than from scratch
    seconds: float = 0.0
    not_attributed: list[str] = field(default_factory=list)  # failures set aside as not what was looked for
    shard: str = ""  # "i/n": the part of the seed's runs this explore played ("" for all of them)
    merged_from: list[str] = field(default_factory=list)  # the shards' report directories, once merged
    guidance_lag: int = 0  # a run's draw saw the guidance of the runs this many before it and earlier

    @property
    def runs_per_hour(self) -> float:
        return round(self.runs * 3600 / self.seconds, 1) if self.seconds else 0.0


# Where a person reads a run (report.html, summary.md, the terminal's table), what failed comes
# first: an explore's 53 runs listed 52 passing ones before its one failure.
READING_ORDER = {Verdict.FAIL: 0, Verdict.ERROR: 1, Verdict.SKIPPED: 2, Verdict.PASS: 3}


def failures_first(results: list[ScenarioResult]) -> list[ScenarioResult]:
    """Failed, then harness errors, then skipped, then passed; in run order within each."""
    return sorted(results, key=lambda r: READING_ORDER[r.verdict])


@dataclass
class RunReport:
    """report.json: the run and every scenario's result."""

    run_id: str
    target: str
    backend: str
    verdict: Verdict
    duration_s: float
    scenarios: list[ScenarioResult]
    schema: Literal[1, 2] = 2  # SCHEMA
    repeat: int = 1
    repeat_consistent: bool = True
    unstable: dict[str, list[str]] = field(default_factory=dict)
    report_errors: list[str] = field(default_factory=list)
    interrupted: bool = False  # stopped before every scenario ran (Ctrl-C, SIGTERM): a partial report
    explore: ExploreSummary | None = None  # faultline explore: coverage, signatures, failures
    jobs: int = 1  # stacks played on side by side (-j), and why that many
    jobs_why: str = ""
    # Scenario: those that ran at the same time on other stacks. Derived from each result's stack,
    # start and duration when not given (a merge gives its shards'), stored so that a reader of
    # report.json need not derive it; reading one back refuses a ``beside`` that contradicts them.
    beside: dict[str, list[str]] = field(default_factory=dict)
    faultline_version: str = field(default_factory=faultline_version)  # which Faultline judged it

    def __post_init__(self) -> None:
        if not self.beside:
            self.beside = ran_beside(self.scenarios)

    def to_json(self) -> str:
        kept = REPORT_TYPES.dump_json(self, indent=2, exclude={"scenarios": {"__all__": {"violation_ids"}}})
        return kept.decode() + "\n"


_SCENARIO: TypeAdapter[ScenarioResult] = TypeAdapter(ScenarioResult)
REPORT_TYPES: TypeAdapter[RunReport] = TypeAdapter(RunReport)  # report.json validated and dumped


def ran_beside(results: Sequence[ScenarioResult]) -> dict[str, list[str]]:
    """For each scenario, the others that ran at the same time (on other stacks)."""
    spans = [(r.name, r.stack, r.started_s, r.started_s + r.duration_s) for r in results if r.duration_s > 0]
    found: dict[str, list[str]] = {}
    for name, stack, lo, hi in spans:
        others = sorted({other for other, o_stack, o_lo, o_hi in spans
                         if o_stack != stack and o_lo < hi and lo < o_hi})
        if others:
            found[name] = others
    return found
