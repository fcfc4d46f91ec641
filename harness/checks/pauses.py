"""Pause checks. ``pause_within_grace``: the pause was acknowledged within its grace (plus a
margin). ``pause_honoured``: while it was in force, from its acknowledgement to its resume,
nothing was read from the source (the exporter's statements on the source table, by Postgres's
own counters, its declared polls aside), appended to the buffer (the tap's view, by Redis's
clock) or delivered to the sink (its end offsets, or lines) beyond what was in flight when it was
acknowledged, and the exporter still said it was paused when the resume came: measured from
outside, so an exporter that answers "paused" and goes on working fails however fast it answered."""

from __future__ import annotations

from harness.checks.base import CheckKind, Evidence
from harness.checks.registry import check_kind
from harness.judge.sinks import SinkRecord
from harness.report.journal import Check, FlowMark, PauseObservation, SourceStatements


@check_kind
class PauseWithinGrace(CheckKind):
    name = "pause_within_grace"
    expect_field = "pause_within_grace"
    summary = "a pause is acknowledged within its grace plus a margin (incident pause-grace-never-fires)"

    def judge(self, evidence: Evidence) -> list[Check]:
        return [Check(self.name, p.acknowledged and p.elapsed_s <= p.within_s, p.detail)
                for p in evidence.observed.pauses]


@check_kind
class PauseHonoured(CheckKind):
    name = "pause_honoured"
    expect_field = "pause_honoured"
    summary = ("nothing read from the source, appended to the buffer or delivered to the sink while a pause is in "
               "force, beyond what was in flight at its acknowledgement; no resuming by itself")

    def judge(self, evidence: Evidence) -> list[Check]:
        return [honoured(p, evidence) for p in evidence.observed.pauses if p.acknowledged]


def honoured(pause: PauseObservation, evidence: Evidence) -> Check:
    start, end = pause.at_ack, pause.at_end
    if start is None or end is None:
        return Check(PauseHonoured.name, False, "the pause was acknowledged but its end was never marked "
                                                "(the harness could not read the sink)")
    if end.exporter_starts != start.exporter_starts:
        return Check(PauseHonoured.name, True, f"not judged: the exporter was started again while paused "
                                               f"({start.exporter_starts} -> {end.exporter_starts} starts), and a "
                                               "new process starts unpaused", applicable=False)
    buffered = evidence.appended_between(start.wall, end.wall) if evidence.appended_between else []
    delivered = delivered_between(evidence.sink, start, end)
    in_flight = 0 if pause.drained else evidence.pause_in_flight_max
    sink_allowance = 0 if pause.drained else pause.pending_at_ack + in_flight
    problems = []
    if len(buffered) > in_flight:
        problems.append(f"{len(buffered)} records appended to the buffer while paused (ids {sorted(buffered)[:10]})")
    if len(delivered) > sink_allowance:
        problems.append(f"{len(delivered)} records delivered to the sink while paused (ids {sorted(delivered)[:10]})")
    source_reads, source_said = _source_reads(pause, start, end, evidence)
    if source_reads:
        problems.append(f"{sum(source_reads.values())} statements on the source table while paused "
                        f"({_statements(source_reads)})")
    if pause.state_at_end != "paused":
        problems.append(f"it said {pause.state_at_end!r} of its pause before the resume came (resumed by itself)")
    allowance = ("it said it was drained: nothing in flight" if pause.drained else
                 f"in flight at the acknowledgement: up to {pause.pending_at_ack} taken from the buffer + "
                 f"{in_flight} declared by the target")
    appended = f"{len(buffered)} appended to the buffer" if evidence.appended_between else "no buffer to watch"
    measured = (f"paused {end.wall - start.wall:.1f}s until {pause.ended_by or 'the end'}: {source_said}, "
                f"{appended}, {len(delivered)} delivered ({allowance})")
    return Check(PauseHonoured.name, not problems, "; ".join(problems) + f" [{measured}]" if problems else measured)


def _source_reads(pause: PauseObservation, start: FlowMark, end: FlowMark,
                  evidence: Evidence) -> tuple[dict[str, int], str]:
    """Statements on the source table while paused beyond one in flight at the acknowledgement
    (none when it said it was drained), and what the report says of the source."""
    if start.source is None or end.source is None:
        return {}, "source reads not measured (it reads by replication)"
    reads, unmeasured = reads_between(start.source, end.source, evidence.paused_statements)
    if unmeasured:
        return {}, f"source reads not measured ({unmeasured})"
    allowed = 0 if pause.drained else 1
    said = f"{sum(reads.values())} statements on the source table"
    return (reads if sum(reads.values()) > allowed else {}), said


def _statements(reads: dict[str, int]) -> str:
    top = sorted(reads.items(), key=lambda item: -item[1])[:2]
    return "; ".join(f"{n}x {query!r}" for query, n in top)


def delivered_between(sink: list[SinkRecord], start: FlowMark, end: FlowMark) -> list[int]:
    """The record ids that reached the sink between two marks: a partition's offsets from the
    first mark's end up to the second's, a file's lines likewise (lines count from 1)."""
    ids = []
    for record in sink:
        lo, hi = start.sink.get(record.stream, 0), end.sink.get(record.stream, 0)
        position = record.position - 1 if record.stream.startswith("file:") else record.position
        if lo <= position < hi:
            ids.append(record.record_id if record.record_id is not None else -1)
    return ids


def reads_between(start: SourceStatements, end: SourceStatements,
                  polls: tuple[str, ...]) -> tuple[dict[str, int], str]:
    """Statements on the source table that ran between two instants (their added calls), those
    matching a declared poll left out; or why it cannot be said."""
    if start.unmeasured or end.unmeasured:
        return {}, start.unmeasured or end.unmeasured
    grown = {q: n - start.calls.get(q, 0) for q, n in end.calls.items()}
    if any(n < 0 for n in grown.values()):
        return {}, "Postgres's statement counters went back (the server restarted while paused)"
    lowered = tuple(p.lower() for p in polls)
    return {q: n for q, n in grown.items() if n > 0 and not any(p in q.lower() for p in lowered)}, ""
