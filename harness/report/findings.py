"""What a judged run found beyond its checks, in the report's types: the change workload's
histories judged per row, how the first lost record was lost, and the losses a failover's span
holds. Kept apart from harness.report.result, which holds the run's typed outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ChangeSummary:
    """The change workload judged per row (harness.judge.histories), summarised: counts exact,
    and for each anomaly class the first rows' histories on both sides."""

    ok: bool = True
    delivers: Literal["every_version", "latest_state"] = "every_version"
    written: int = 0  # changes attempted
    writes: dict[str, int] = field(default_factory=dict)  # outcome -> changes (ok, failed, indeterminate)
    committed: int = 0
    rows: int = 0
    transactions: int = 0  # committed transactions of more than one change
    key_changes: int = 0
    deletes: int = 0
    duplicates: int = 0
    uncertain: int = 0  # changes whose commit outcome stayed unknown
    counts: dict[str, int] = field(default_factory=dict)  # anomaly class -> how many
    samples: dict[str, list[str]] = field(default_factory=dict)  # class -> "row 17: source v1 v2; sink v2 v1"
    unexpected_samples: list[str] = field(default_factory=list)
    resolve_error: str | None = None
    before_images: Literal["full", "none"] | None = None  # what before images were held to (None: not judged)
    before_images_judged: int = 0
    marked: bool = False  # transactions held to one mark each (the target marks them)


@dataclass
class LossStory:
    """How the first lost record was lost, in the run's own clock (harness.judge.story)."""

    record_id: int
    hop: str = ""
    written_at_s: float | None = None
    buffered_at_s: float | None = None  # when the buffer tap saw it appended (None: never)
    events: list[str] = field(default_factory=list)  # "t=  1.234s  what happened", in order
    more: int = 0  # events past the ones kept


@dataclass
class FailoverLoss:
    """Records lost around a failover (harness.judge.anomalies.losses_by_failover): which step
    and server, when, what the servers said (the step's evidence: who was promoted or elected,
    the replication offsets or watermarks), and how many of the run's lost records were written
    from ``FAILOVER_LEAD_S`` before its window to its end."""

    step: str
    server: str
    applied_at_s: float | None
    removed_at_s: float | None
    lost: int  # lost records written in that span
    lost_total: int  # every lost record of the run
    first_ids: list[int] = field(default_factory=list)
    evidence: str = ""
