"""How the first lost record was lost, told from one run: a failure that stays rare must still be
understood from the run that showed it.

Everything the run already observed, put in one order on the run's clock: when the record was
written, whether and when the buffer tap saw it appended, each fault's window as the journal
has it (with what it met), and what the exporter logged around then (its warnings and errors,
and any line that names the record). Read top to bottom, it says what the exporter was doing
when the record went missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.report.findings import LossStory
from harness.report.journal import StepRecord

BEFORE_S = 3.0  # events kept from this long before the record was written...
AFTER_S = 5.0  # ...to this long after
MAX_EVENTS = 40
LOGGED = frozenset({"warning", "error", "critical"})
DETAILS = ("stage", "checkpoint", "ahead", "attempt", "error_class", "cause", "reason")  # what a log line adds


def loss_story(record_id: int, hop: str, written_at: float | None, appended: Iterable[tuple[int, list[int]]],
               steps: list[StepRecord], log_records: list[dict[str, Any]], wall_start: float) -> LossStory:
    buffered = next((ms / 1000 - wall_start for ms, ids in appended if record_id in ids), None)
    events: list[tuple[float, str]] = []
    if written_at is not None:
        events.append((written_at, f"record {record_id} written (acknowledged by the source)"))
    if buffered is not None:
        events.append((buffered, f"record {record_id} appended to the buffer (seen by the buffer tap)"))
    for step in steps:
        events += _step_events(step)
    events += [(t, line) for t, line in _log_events(record_id, log_records, wall_start)]
    centre = written_at if written_at is not None else (buffered or 0.0)
    kept = sorted((e for e in events if centre - BEFORE_S <= e[0] <= centre + AFTER_S), key=lambda e: e[0])
    return LossStory(record_id=record_id, hop=hop, written_at_s=_rounded(written_at), buffered_at_s=_rounded(buffered),
                     events=[f"t={t:7.3f}s  {text}" for t, text in kept[:MAX_EVENTS]],
                     more=max(0, len(kept) - MAX_EVENTS))


def _step_events(step: StepRecord) -> list[tuple[float, str]]:
    kind = "fault" if step.fault else "step"
    out: list[tuple[float, str]] = []
    if step.applied_at is not None:
        met = (f" ({step.in_flight_at_apply} records in flight)" if step.in_flight_at_apply is not None else "")
        out.append((step.applied_at, f"{kind} applied: {step.description}{met}"))
    if step.removed_at is not None:
        out.append((step.removed_at, f"{kind} removed: {step.description}"
                    + (f"; {step.evidence[:160]}" if step.evidence else "")))
    return out


def _log_events(record_id: int, records: list[dict[str, Any]], wall_start: float) -> Iterable[tuple[float, str]]:
    for record in records:
        ts = record.get("ts")
        names_it = record.get("record_id") == record_id
        if not isinstance(ts, int | float) or not (record.get("level") in LOGGED or names_it):
            continue
        extra = ", ".join(f"{k}={str(record[k])[:120]}" for k in DETAILS if k in record)
        yield ts - wall_start, f"exporter {record.get('level')}: {record.get('msg', '')}" + (
            f" ({extra})" if extra else "")


def _rounded(t: float | None) -> float | None:
    return None if t is None else round(t, 3)
