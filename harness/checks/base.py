"""What every check is: one registered class that owns the ``Expect`` field turning it on, the
target capabilities it needs, and ``judge(evidence) -> [Check]``. The judge gathers ``Evidence``
(what was read from the servers and what the steps observed) and asks every registered check;
no step and no judge function makes a ``Check`` of its own.

A check is one class in one file::

    @check_kind
    class NoLoss(CheckKind):
        name = "no_loss"
        expect_field = "no_loss"          # Expect.no_loss turns it on (None: always on)
        summary = "every acknowledged write is in the sink or rightly dead-lettered"

        def judge(self, evidence: Evidence) -> list[Check]: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from harness.judge.letters import LetterCheck
from harness.judge.sinks import DeadLetterRecord, SinkRecord
from harness.report.journal import Check, Observations, ProcessEvidence
from harness.report.result import CheckpointPoint, MetricsSnapshot, Resources, SteadyState

if TYPE_CHECKING:
    from harness.judge.histories import HistoryJudgement
    from harness.judge.reconcile import Reconciliation
    from harness.model.expect import Expect
    from harness.report.resources import Trend

# What a target can offer a check (from its definition): a check that needs what the target
# lacks is shown "n/a" with the reason, never as held.
Capability = Literal["metrics", "buffer", "dead_letters"]


@dataclass(frozen=True)
class RecoveryEvidence:
    seconds: float | None  # from healing to drained; None: it never drained
    timed_out: str | None = None


@dataclass(frozen=True)
class MetricsEvidence:
    snapshot: MetricsSnapshot | None
    unreadable: str | None  # why the counters could not be read
    error_total: float = 0.0
    error_lines: int = 0  # error log lines naming a record or a stage
    restarted: bool = False  # counters began again with a new process


@dataclass(frozen=True)
class ResourceEvidence:
    resources: Resources
    trends: list[Trend]
    leaks: list[Trend]


@dataclass
class Evidence:
    """Everything a check may read, gathered once the run was healed and drained."""

    expect: Expect
    capabilities: frozenset[Capability]
    target_name: str
    interrupted: bool = False
    steady: SteadyState = field(default_factory=SteadyState)
    process: ProcessEvidence | None = None
    recovery: RecoveryEvidence | None = None
    outcome: Reconciliation | None = None
    sink: list[SinkRecord] = field(default_factory=list)
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)  # every letter: the counter counts jobs' too
    letters: LetterCheck = field(default_factory=LetterCheck)
    duplicates_by_window: dict[str, int] = field(default_factory=dict)
    metrics: MetricsEvidence | None = None
    checkpoints: list[CheckpointPoint] = field(default_factory=list)
    resources: ResourceEvidence | None = None
    observed: Observations = field(default_factory=Observations)
    # The buffer's record ids appended between two instants (epoch s); None without a buffer tap.
    appended_between: Callable[[float, float], list[int]] | None = None
    pause_in_flight_max: int = 0  # records a target may still move after acknowledging a pause
    paused_statements: tuple[str, ...] = ()  # statements it may run on the source while paused (a lag poll)
    changes: HistoryJudgement | None = None  # the change workload judged per row (None: none was written)


class CheckKind:
    """Base of every check (built-in, or a team's own registered with ``@check_kind``)."""

    name: ClassVar[str] = ""
    # The Expect field that turns it on (None: always on). A built-in field is read by exactly
    # one check; a team's own check names a key of ``Expect.custom`` and gives its ``default``.
    expect_field: ClassVar[str | None] = None
    default: ClassVar[Any] = True  # for a custom field a scenario does not set
    needs: ClassVar[frozenset[Capability]] = frozenset()
    summary: ClassVar[str] = ""

    def enabled(self, expect: Expect) -> bool:
        """Off when its field is False or None (a bound not set); a check whose field means
        something else by "off" says so by overriding this."""
        value = self.setting(expect)
        return value is not None and value is not False

    def setting(self, expect: Expect) -> Any:
        if self.expect_field is None:
            return True
        if self.expect_field in expect.__dataclass_fields__:
            return getattr(expect, self.expect_field)
        return expect.custom.get(self.expect_field, self.default)

    def judge(self, evidence: Evidence) -> list[Check]:
        raise NotImplementedError(f"check {self.name!r} does not say how it judges")
