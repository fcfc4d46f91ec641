"""The judge: after the timeline, heal everything, let the exporter drain (a condition poll whose
deadline scales with the faults injected), read every sink directly and gather the evidence; the
registered checks (harness.checks) judge it, each a small class of what was read, so the rules
are tested without servers."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import httpx

from harness.checks import Capability, Evidence, judge_all
from harness.checks.base import MetricsEvidence, ProcessEvidence, RecoveryEvidence, ResourceEvidence
from harness.infra.waiting import WaitTimeout, wait_for
from harness.judge.anomalies import duplicates_by_window, losses_by_failover
from harness.judge.changelog import change_letters, split_changes
from harness.judge.histories import HistoryJudgement, judge_histories
from harness.judge.letters import LetterCheck
from harness.judge.reconcile import LOST, VIOLATIONS, Reconciliation, reconcile
from harness.judge.sinks import DeadLetterRecord, SinkRecord
from harness.judge.story import loss_story
from harness.play.letter_offers import verify_dead_letters
from harness.play.run import Run
from harness.report.findings import ChangeSummary, LossStory
from harness.report.resources import MIN_SAMPLES, ResourceMonitor
from harness.report.result import LedgerSummary, MetricsSnapshot, Resources
from harness.rig.changes import ChangeWriter
from harness.rig.exporter_process import ExporterProcess, MetricsUnavailable
from harness.rig.timeline import Sampler, deliveries
from harness.steps.pause_watch import end_open_pauses

QUIET_S = 5.0  # no progress for this long with an empty buffer: the exporter has given all it will
# ... and this long when some acknowledged rows never entered the buffer (five times the bundled
# reader's longest backoff: a failing run pays it, a passing one never waits on the quiet rule).
QUIET_UNREAD_S = 10.0


@dataclass
class SinkContents:
    sink: list[SinkRecord]
    letters: list[DeadLetterRecord]


def heal(run: Run) -> float:
    """Every toxic gone, every link up, every server running; an exporter that died by itself is
    noted (``process_alive`` judges it) and started again so that what it left can still be
    delivered. Returns when healing was done (monotonic)."""
    exporter = run.live_exporter()
    died = not exporter.running()
    exit_code = exporter.exit_code()
    run.stack.reset(topology=False)  # a failover is not undone: the promoted node stays primary
    run.process = ProcessEvidence(exporter.starts, run.planned_kills, died, exit_code)
    if died:
        run.revived = True
        exporter.close()
        run.start_exporter()
    return time.monotonic()


def drain_deadline(run: Run) -> float:
    # Waits scale with the faults injected (too-tight timeouts are an incident of their own).
    return 30.0 + 2 * run.scenario.fault_seconds + sum(s.do.extra_drain_s() for s in run.scenario.steps)


def drain(run: Run, healed_at: float) -> tuple[SinkContents, RecoveryEvidence]:
    """Wait until every acknowledged write is in a sink or dead-lettered, or until nothing moves
    any more with an empty buffer; returns what the sinks hold and how long it took."""
    exporter = run.live_exporter()
    ok_ids = run.ledger.ids("ok")
    seen = SinkContents([], [])
    quiet = {"since": time.monotonic(), "count": -1}

    def accounted() -> bool:
        seen.sink, seen.letters, ids = run.settled(exporter)
        owed = run.changes_owed(seen.sink)  # committed changes not shown yet (a change workload's)
        if ok_ids <= ids and not owed:
            return True
        count = len(seen.sink) + len(seen.letters)
        if count != quiet["count"]:
            quiet["since"], quiet["count"] = time.monotonic(), count
        quiet_for = time.monotonic() - quiet["since"]
        if quiet_for <= QUIET_S or not run.buffer_idle():
            return False
        if quiet_for <= QUIET_UNREAD_S and (owed or run.never_buffered(ok_ids)):
            # Rows never read may still come: a reader backing off after a source error (slower
            # still under a clock fault) leaves the buffer empty and the sinks quiet meanwhile.
            return False
        # The buffer is empty now, and the exporter empties it only after the sink confirmed: what
        # left it is in the sinks before this moment, so the sinks are read again after it. The
        # read above came before and raced the last delivery (explore: a batch delivered between
        # the two reads was called lost, 100 records the topic held).
        seen.sink, seen.letters, _ids = run.settled(exporter)
        return True

    try:
        wait_for(accounted, timeout=drain_deadline(run), interval=0.25, what="the exporter to drain")
    except WaitTimeout as exc:
        return seen, RecoveryEvidence(None, str(exc))
    recovered = time.monotonic() - healed_at
    run.result.recovery_s = round(recovered, 3)
    return seen, RecoveryEvidence(recovered)


def judge(run: Run, healed_at: float, sampler: Sampler | None, monitor: ResourceMonitor | None) -> None:
    """Gather the evidence once, then every registered check the scenario turns on judges it."""
    run.resolve_unknown_writes()
    exporter = run.live_exporter()
    end_open_pauses(run, "the end of the run")  # a pause never resumed is watched up to here
    seen, recovery = drain(run, healed_at)
    run.result.steady_state.healthy_after = exporter.healthy()
    if sampler is not None:
        run.result.series = sampler.stop().to_series(*deliveries(seen.sink, run.clock, run.wall_start))
    job_stage = run.target.sinks.get("export_dead_letter_stage")
    letters = [x for x in seen.letters if x.stage != job_stage]
    letter_check, letters, arrived = check_letters_of(run, seen.sink, letters)
    plain, histories = judge_changes(run, seen.sink + arrived if arrived else seen.sink)
    log = exporter.log_records()  # read once: the metrics, the loss story and the excerpt all use it
    outcome = reconcile(run.ledger, plain, letters, run.buffer_evidence(), misrouted=letter_check.misrouted)
    ledger = run.result.ledger = ledger_summary(run, outcome)
    ledger.duplicates_by_window = duplicates_by_window(outcome.redeliveries, run.result.steps, run.wall_start)
    run.result.violation_ids = {cls: sorted(ids) for cls, ids in outcome.classes.items() if cls in VIOLATIONS and ids}
    ledger.letters_verified, ledger.letters_trusted = letter_check.verified, letter_check.trusted
    ledger.letters_undeclared = sum(letter_check.undeclared.values())
    evidence = Evidence(
        expect=run.scenario.expect, capabilities=capabilities(run), target_name=run.target.name,
        interrupted=run.result.interrupted, steady=run.result.steady_state, process=run.process, recovery=recovery,
        outcome=outcome, sink=seen.sink, dead_letters=seen.letters, letters=letter_check,
        duplicates_by_window=ledger.duplicates_by_window, metrics=read_metrics(run, exporter, seen, log),
        checkpoints=run.result.checkpoints, resources=read_resources(run, monitor), observed=run.observed,
        appended_between=run.tap.appended_between if run.tap is not None else None,
        pause_in_flight_max=run.target.pause_in_flight_max, paused_statements=run.target.paused_statements,
        changes=histories)
    run.result.checks += judge_all(evidence)
    run.result.loss_story = first_loss_story(run, outcome, log)
    run.result.failover_losses = losses_by_failover(outcome.classes.get(LOST, []), run.result.steps,
                                                    run.clock.written_at)
    run.result.log_excerpt = excerpt_of(log)
    run.result.log_kinds = log_kinds(log, run.result.names)


def check_letters_of(run: Run, sink: list[SinkRecord], letters: list[DeadLetterRecord]
                     ) -> tuple[LetterCheck, list[DeadLetterRecord], list[SinkRecord]]:
    """Every letter's reason checked (harness.play.letter_offers; a record's against the sink's
    plain records), then the letters parted: the record workload's for the reconciler, the
    change workload's as change events that arrived on the dead-letter stream (only those whose
    reason holds), for the judge of histories."""
    rows = set(run.changes.log.rows) if run.changes is not None else set()
    delivered = frozenset(r.record_id for r in sink if r.record_id is not None and r.record_id not in rows)
    check = verify_dead_letters(run, letters, delivered)
    if run.changes is None:
        return check, letters, []
    records, arrived = change_letters(letters, run.target.record, run.changes.log, check.misrouted)
    return check, records, arrived


def judge_changes(run: Run, sink: list[SinkRecord]) -> tuple[list[SinkRecord], HistoryJudgement | None]:
    """The sink parted into plain records and change events, the latter judged per row against
    the change log (None without a change workload)."""
    if run.changes is None:
        return sink, None
    log = run.changes.log
    plain, events = split_changes(sink, run.target.record, log)
    marked = run.target.changes is not None and run.target.changes.transactions == "marked"
    result = judge_histories(log, events, run.delivers, run.before_images, marked)
    run.result.changes = change_summary(result, run.changes)
    return plain, result


def change_summary(judged: HistoryJudgement, writer: ChangeWriter) -> ChangeSummary:
    return ChangeSummary(judged.ok, judged.delivers, writer.written, dict(writer.outcomes), judged.committed,
                         judged.rows, judged.transactions, judged.key_changes, judged.deletes, judged.duplicates,
                         judged.uncertain, dict(sorted(judged.counts.items())), judged.samples,
                         judged.unexpected_samples, writer.resolve_error, judged.before_images,
                         judged.before_images_judged, judged.marked)


def first_loss_story(run: Run, outcome: Reconciliation, log: list[dict]) -> LossStory | None:
    """The story of the first lost record (harness.judge.story), or None when nothing was lost."""
    lost = outcome.classes.get(LOST, [])
    if not lost:
        return None
    first = min(lost)
    return loss_story(first, outcome.lost_hops.get(first, ""), run.clock.written_at(first),
                      run.tap.appended if run.tap is not None else [], run.result.steps, log, run.wall_start)


def capabilities(run: Run) -> frozenset[Capability]:
    """What the target offers the checks, from its definition."""
    offered: list[Capability] = []
    if run.target.has_metrics:
        offered.append("metrics")
    if run.target.has_sink("buffer_stream"):
        offered.append("buffer")
    if run.target.has_sink("dead_letter_stream"):
        offered.append("dead_letters")
    return frozenset(offered)


def ledger_summary(run: Run, outcome: Reconciliation) -> LedgerSummary:
    tap_error = run.tap.error if run.tap is not None else None
    return LedgerSummary(**outcome.summary(), writes=run.ledger.outcome_counts(),
                         tap_error=repr(tap_error) if tap_error else None,
                         resolved_from_source=run.resolved, resolve_error=run.resolve_error)


def read_metrics(run: Run, exporter: ExporterProcess, seen: SinkContents, log: list[dict]) -> MetricsEvidence | None:
    """The exporter's counters at the end (None for a target that names none)."""
    if not run.target.has_metrics:
        return None
    restarted = exporter.starts > 1 or run.planned_kills > 0 or run.revived
    try:
        # Counters restart with the process: after a restart they never reach the sink's count,
        # and only their upper bound is judged, which waiting cannot change (it cost 15 s a run).
        samples = exporter.metrics() if restarted else settled_counters(exporter, seen)
    except (MetricsUnavailable, httpx.HTTPError) as exc:
        return MetricsEvidence(None, str(exc))
    snapshot = MetricsSnapshot(exporter.metric_total("delivered", samples),
                               exporter.metric_total("dead_lettered", samples), len(seen.sink), len(seen.letters),
                               exporter.starts)
    run.result.metrics = snapshot
    run.result.counters = {key: exporter.metric_total(key, samples) for key in run.target.metrics}
    errors = [r for r in log if r.get("level") in ("error", "critical")
              and (r.get("record_id") is not None or r.get("stage"))]
    return MetricsEvidence(snapshot, None, exporter.error_total(samples), len(errors), restarted)


COUNTERS_SETTLE_S = 15.0  # past the longest answer a fault holds back (a produce answer delayed 3 s)


def settled_counters(exporter: ExporterProcess, seen: SinkContents,
                     timeout: float = COUNTERS_SETTLE_S) -> dict[str, float]:
    """The exporter's counters once they account for every distinct record the sink holds (or as
    they are when ``timeout`` runs out). A message is in the topic before the exporter hears it was
    written: with the broker's answer held back (a delayed produce), a scrape right after the
    drain read 250 delivered of 260 in the sink, a correct exporter judged wrong (CI's explore).
    Over-counting shows at once: waiting only lets a lagging count catch up."""
    held = len({r.record_id for r in seen.sink if r.record_id is not None}) + len(seen.letters)
    last: list[dict[str, float]] = []

    def caught_up() -> bool:
        last[:] = [exporter.metrics()]
        return exporter.metric_total("delivered", last[0]) + exporter.metric_total("dead_lettered", last[0]) >= held

    try:
        wait_for(caught_up, timeout=timeout, interval=0.2, what="the exporter's counters to count what the sink holds")
    except WaitTimeout:
        pass  # they never caught up: the check judges them as they are, and says so
    return last[0]


def read_resources(run: Run, monitor: ResourceMonitor | None) -> ResourceEvidence | None:
    if monitor is None:
        return None
    report = monitor.stop()
    resources = Resources(report.samples, report.errors, report.trends)
    if not report.trends:
        # Not a pass by default: nothing is claimed, and the report says why.
        resources.not_judged = (f"no exporter lifetime had {MIN_SAMPLES} samples after warm-up "
                                f"({len(report.samples)} samples in all)")
    run.result.resources = resources
    return ResourceEvidence(resources, report.trends, report.leaks)


def log_kinds(records: list[dict], names: dict[str, str] | None = None, most: int = 50) -> list[str]:
    """The kinds of warning and error the exporter logged: level, message and stage (or logger),
    with this run's names (namespace, table, topic: they differ every run) put back to their
    placeholders and each run of digits one '#' (so 'attempt 3' and 'attempt 12' are one kind)."""
    kinds = {f"{r.get('level')}: {_message_kind(str(r.get('msg')), names or {})}{_where(r)}"
             for r in records if r.get("level") in ("warning", "error", "critical")}
    return sorted(kinds)[:most]


def _message_kind(message: str, names: dict[str, str], length: int = 140) -> str:
    return re.sub(r"\d+", "#", _redacted(message, names))[:length]


def _redacted(message: str, names: dict[str, str]) -> str:
    for placeholder, value in sorted(names.items(), key=lambda item: -len(item[1])):  # a topic holds the namespace
        if value:
            message = message.replace(value, "{" + placeholder + "}")
    return message


def _where(record: dict) -> str:
    if record.get("stage"):
        return f" [{str(record['stage'])[:60]}]"
    logger = record.get("logger")
    return f" ({str(logger).rsplit('.', 1)[-1][:60]})" if logger else ""


def log_excerpt(exporter: ExporterProcess, lines: int = 30) -> list[str]:
    return excerpt_of(exporter.log_records(), lines)


def excerpt_of(records: list[dict], lines: int = 30) -> list[str]:
    important = [r for r in records if r.get("level") in ("error", "critical", "warning")]
    return [json.dumps(r, default=str)[:500] for r in important[-lines:]]
