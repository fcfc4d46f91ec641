"""Redeliveries tied to the fault window they follow, so that a report says which fault made the
duplicates (the ``duplicates`` and ``key_order`` checks themselves are in harness.checks.records),
and losses tied to the failovers whose span they fall in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from harness.report.findings import FailoverLoss
from harness.report.journal import StepRecord

BEFORE_ANY_FAULT = "before any fault"
UNKNOWN_TIME = "at an unknown time (the sink keeps no timestamps)"


def window_label(step: StepRecord) -> str:
    return f"{step.description} (from t={step.applied_at or 0:.1f}s)"


def duplicates_by_window(redeliveries: Iterable[tuple[int, float | None]], steps: list[StepRecord],
                         wall_start: float) -> dict[str, int]:
    """Each redelivery counts against the last fault applied before the sink took it."""
    faults = sorted((s for s in steps if s.fault and s.applied_at is not None), key=lambda s: s.applied_at or 0)
    counts: Counter[str] = Counter()
    for _record_id, ts in redeliveries:
        if ts is None:
            counts[UNKNOWN_TIME] += 1
            continue
        at = ts - wall_start
        before = [s for s in faults if (s.applied_at or 0) <= at]
        counts[window_label(before[-1]) if before else BEFORE_ANY_FAULT] += 1
    return dict(counts.most_common())


FAILOVER_LEAD_S = 2.0  # records written this long before a failover's window were still in the pipeline
FIRST_IDS = 10


def losses_by_failover(lost: Iterable[int], steps: list[StepRecord],
                       written_at: Callable[[int], float | None]) -> list[FailoverLoss]:
    """Each failover step with the lost records written from ``FAILOVER_LEAD_S`` before its window
    to its end (on the run's clock): what a failover can lose is what was acknowledged while the
    replica fell behind, and what was still on its way when it began. A loss outside every
    failover's span is not attributed to one (the report then names none)."""
    lost_ids = sorted(lost)
    out: list[FailoverLoss] = []
    for step in steps:
        if not step.fails_over or step.applied_at is None:
            continue
        start = step.applied_at - FAILOVER_LEAD_S
        end = step.removed_at if step.removed_at is not None else float("inf")
        inside = [i for i in lost_ids if (t := written_at(i)) is not None and start <= t <= end]
        out.append(FailoverLoss(step=step.description, server=step.fails_over, applied_at_s=step.applied_at,
                                removed_at_s=step.removed_at, lost=len(inside), lost_total=len(lost_ids),
                                first_ids=inside[:FIRST_IDS], evidence=step.evidence))
    return out
