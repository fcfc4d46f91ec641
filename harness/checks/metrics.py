"""Checks of what the exporter says of itself: its counters against the sinks, and failures it
met surfaced as counters and as error log lines naming a record or a stage."""

from __future__ import annotations

from harness.checks.base import CheckKind, Evidence, MetricsEvidence
from harness.checks.registry import check_kind
from harness.judge.sinks import DeadLetterRecord, SinkRecord
from harness.report.journal import Check
from harness.report.result import MetricsSnapshot


@check_kind
class MetricsAgree(CheckKind):
    name = "metrics_agree"
    expect_field = "metrics_agree"
    needs = frozenset({"metrics"})
    summary = "delivered and dead-lettered counters between the distinct records and the messages in the sinks"

    def judge(self, evidence: Evidence) -> list[Check]:
        found = _counters(self.name, evidence)
        if not isinstance(found, MetricsEvidence) or found.snapshot is None:
            return found if isinstance(found, list) else []
        return [metrics_agree(found.snapshot, evidence.sink, evidence.dead_letters, found.restarted)]


def _counters(name: str, evidence: Evidence) -> MetricsEvidence | list[Check]:
    """The counters read at the end, or what a check says without them: nothing when the target
    names none, a violation when they could not be read (a scrape that fails is the exporter's)."""
    found = evidence.metrics
    if found is None:
        return []
    if found.snapshot is None:
        return [Check(name, False, f"metrics unreadable: {found.unreadable}")]
    return found


def metrics_agree(counters: MetricsSnapshot, sink: list[SinkRecord], letters: list[DeadLetterRecord],
                  restarted: bool) -> Check:
    """A send reported failed may still have landed (then it is retried: a duplicate), so a counter
    sits between the distinct records and all messages. Above the messages: it counted deliveries
    that never happened. Below the distinct records: something reached the sink that the exporter
    never confirmed, or it failed without counting. Counters restart with the process: after a
    restart only the upper bound still holds."""
    delivered, dead = counters.delivered, counters.dead_lettered
    messages = len(sink)
    distinct_sink = len({r.record_id for r in sink})
    distinct_letters = len({x.record_id for x in letters})
    if restarted:
        ok = delivered <= messages and dead <= len(letters)
        rule = "counters since the last start <= sink contents"
    else:
        ok = distinct_sink <= delivered <= messages and distinct_letters <= dead <= len(letters)
        rule = "distinct records <= counters <= sink contents"
    return Check("metrics_agree", ok, f"{rule}: delivered counter {delivered:.0f} vs {distinct_sink} distinct / "
                 f"{messages} messages; dead-lettered counter {dead:.0f} vs {distinct_letters} distinct / "
                 f"{len(letters)} dead letters"
                 + ("" if ok else " (a failure the exporter did not count, or a delivery it counted but never made)"))


@check_kind
class ErrorsSurfaced(CheckKind):
    name = "errors_surfaced"
    expect_field = "errors_surfaced"
    needs = frozenset({"metrics"})
    summary = "the faults show in the failure counters and in error log lines naming a record or stage"

    def judge(self, evidence: Evidence) -> list[Check]:
        # Interrupted (Ctrl-C): the faults did not run their course, so what they must provoke is
        # not judged; what must never happen (loss, corruption, disorder) still is.
        found = [] if evidence.interrupted else _counters(self.name, evidence)
        if not isinstance(found, MetricsEvidence):
            return found
        return [Check(self.name, found.error_total > 0 and found.error_lines > 0,
                      f"failure counters {found.error_total:.0f}, {found.error_lines} error log lines naming a "
                      "record or stage")]
