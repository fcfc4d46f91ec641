"""Redeliveries tied to the fault window they follow, so that a report says which fault made the
duplicates (the ``duplicates`` and ``key_order`` checks themselves are in harness.checks.records)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

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
