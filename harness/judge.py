"""The judge: after the timeline, heal everything, let the exporter drain (a condition poll whose
deadline scales with the faults injected), read every sink directly and check each expectation.
Each check is a small function of what was read, so the rules are tested without servers."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import httpx

from harness.anomalies import duplicate_check, duplicates_by_window, order_check
from harness.journal import Check
from harness.letter_checks import verify_dead_letters
from harness.reconcile import (
    DEAD_LETTERED_DELIVERABLE,
    DEAD_LETTERED_WITHOUT_REASON,
    DELIVERED_CORRUPTED,
    LOST,
    VIOLATIONS,
    Reconciliation,
    reconcile,
)
from harness.resources import MIN_SAMPLES, ResourceMonitor
from harness.result import CheckpointPoint, LedgerSummary, MetricsSnapshot, Resources
from harness.run import Run
from harness.scenario import Expect, Toxic
from harness.sinks import DeadLetterRecord, SinkRecord
from harness.target import ExporterProcess, MetricsUnavailable
from harness.timeline import Sampler, deliveries
from harness.waiting import WaitTimeout, wait_for

QUIET_S = 5.0  # no progress for this long with an empty buffer: the exporter has given all it will


@dataclass
class SinkContents:
    sink: list[SinkRecord]
    letters: list[DeadLetterRecord]


def heal(run: Run) -> float:
    """Every toxic gone, every link up, every server running; an exporter that died by itself is
    judged (``process_alive``) and started again so that what it left can still be delivered.
    Returns when healing was done (monotonic)."""
    exporter = run.live_exporter()
    died = not exporter.running()
    exit_code = exporter.exit_code()
    run.stack.reset()
    alive = not died and exporter.starts == 1 + run.planned_kills
    run.result.checks.append(Check(
        "process_alive", alive or not run.scenario.expect.process_alive,
        f"exporter started {exporter.starts} time(s) for {run.planned_kills} planned kill(s); "
        + (f"it exited by itself with code {exit_code}" if died else "still running")))
    if died:
        run.revived = True
        exporter.close()
        run.start_exporter()
    return time.monotonic()


def drain_deadline(run: Run) -> float:
    # Waits scale with the faults injected (too-tight timeouts are an incident of their own).
    latency = sum(int(s.do.attributes.get("latency", 0)) for s in run.scenario.steps if isinstance(s.do, Toxic))
    return 30.0 + 2 * run.scenario.fault_seconds + latency / 100


def drain(run: Run, healed_at: float) -> SinkContents:
    """Wait until every acknowledged write is in a sink or dead-lettered, or until nothing moves
    any more with an empty buffer; judges ``recovered_within`` and returns what the sinks hold."""
    exporter = run.live_exporter()
    ok_ids = run.ledger.ids("ok")
    seen = SinkContents([], [])
    quiet = {"since": time.monotonic(), "count": -1}

    def accounted() -> bool:
        seen.sink, seen.letters, ids = run.settled(exporter)
        if ok_ids <= ids:
            return True
        count = len(seen.sink) + len(seen.letters)
        if count != quiet["count"]:
            quiet["since"], quiet["count"] = time.monotonic(), count
        return time.monotonic() - quiet["since"] > QUIET_S and run.buffer_idle()

    bound = run.scenario.expect.recovered_within_s
    try:
        wait_for(accounted, timeout=drain_deadline(run), interval=0.25, what="the exporter to drain")
        recovered = time.monotonic() - healed_at
        run.result.recovery_s = round(recovered, 3)
        run.result.checks.append(Check("recovered_within", recovered <= bound,
                                       f"drained {recovered:.1f}s after healing (bound {bound}s)"))
    except WaitTimeout as exc:
        run.result.checks.append(Check("recovered_within", False, str(exc)))
    return seen


def judge(run: Run, healed_at: float, sampler: Sampler | None, monitor: ResourceMonitor | None) -> None:
    run.resolve_unknown_writes()
    exporter = run.live_exporter()
    seen = drain(run, healed_at)
    healthy = exporter.get(run.target.ready_path, timeout=5).status_code == 200
    run.result.steady_state.healthy_after = healthy
    run.result.checks.append(Check("steady_state_after", healthy, "exporter healthy after healing"))
    if sampler is not None:
        run.result.series = sampler.stop().to_series(*deliveries(seen.sink, run.clock, run.wall_start))
    evidence = run.buffer_evidence()
    job_stage = run.target.sinks.get("export_dead_letter_stage")
    letters = [x for x in seen.letters if x.stage != job_stage]
    letter_check = verify_dead_letters(run, letters)
    outcome = reconcile(run.ledger, seen.sink, letters, evidence, misrouted=letter_check.misrouted)
    run.result.ledger = ledger_summary(run, outcome)
    run.result.ledger.duplicates_by_window = duplicates_by_window(outcome.redeliveries, run.result.steps,
                                                                  run.wall_start)
    run.result.violation_ids = {cls: sorted(ids) for cls, ids in outcome.classes.items() if cls in VIOLATIONS and ids}
    run.result.ledger.letters_verified = letter_check.verified
    run.result.ledger.letters_unverified = letter_check.unverified
    run.result.checks += record_checks(run.scenario.expect, outcome, interrupted=run.result.interrupted)
    if run.scenario.expect.key_order:
        run.result.checks.append(order_check(outcome))
    run.result.checks += duplicate_check(run.scenario.expect, outcome, run.result.ledger.duplicates_by_window)
    run.result.checks += metric_checks(run, exporter, seen)
    run.result.checks += checkpoint_checks(run.result.checkpoints)
    if monitor is not None:
        run.result.resources, leak_check = resource_check(monitor)
        run.result.checks += leak_check
    run.result.log_excerpt = log_excerpt(exporter)
    run.result.log_kinds = log_kinds(exporter.log_records(), run.result.names)


def ledger_summary(run: Run, outcome: Reconciliation) -> LedgerSummary:
    tap_error = run.tap.error if run.tap is not None else None
    return LedgerSummary(**outcome.summary(), writes=run.ledger.outcome_counts(),
                         tap_error=repr(tap_error) if tap_error else None,
                         resolved_from_source=run.resolved, resolve_error=run.resolve_error)


def record_checks(expect: Expect, outcome: Reconciliation, interrupted: bool = False) -> list[Check]:
    """The record-by-record invariants the scenario expects, from the reconciliation."""
    checks = []
    if expect.no_loss:
        lost = outcome.classes.get(LOST, [])
        hops = {outcome.lost_hops[i] for i in lost}
        misrouted = outcome.classes.get(DEAD_LETTERED_DELIVERABLE, [])
        parts = ([f"{len(lost)} lost; ids {sorted(lost)[:10]}; hops {sorted(hops)}"] if lost else []) + (
            [f"{len(misrouted)} dead-lettered though deliverable; ids {sorted(misrouted)[:10]}; e.g. "
             f"{outcome.misrouted[min(misrouted)]}"] if misrouted else [])
        checks.append(Check("no_loss", not parts, "; ".join(parts) or "every acknowledged write accounted for"))
    if expect.no_corruption:
        bad = outcome.classes.get(DELIVERED_CORRUPTED, [])
        checks.append(Check("no_corruption", not bad, f"{len(bad)} corrupted; ids {sorted(bad)[:10]}"
                            if bad else "every delivered record byte for byte"))
    if expect.dead_letters_have_reasons:
        bad = outcome.classes.get(DEAD_LETTERED_WITHOUT_REASON, [])
        checks.append(Check("dead_letters_have_reasons", not bad, f"{len(bad)} without reason: {sorted(bad)[:10]}"
                            if bad else f"{outcome.count('dead_lettered')} dead letters, each with a reason"))
    if expect.dead_lettered_at_least and not interrupted:
        n = outcome.count("dead_lettered")
        checks.append(Check("dead_lettered", n >= expect.dead_lettered_at_least,
                            f"{n} dead-lettered (expected at least {expect.dead_lettered_at_least})"))
    checks.append(Check("no_unexpected", not outcome.unexpected,
                        f"{len(outcome.unexpected)} unexpected: {outcome.unexpected[:5]}"
                        if outcome.unexpected else "nothing in the sinks that was not written"))
    return checks


def metric_checks(run: Run, exporter: ExporterProcess, seen: SinkContents) -> list[Check]:
    expect = run.scenario.expect
    if not run.target.has_metrics:  # said, not silently passed: the report shows why it was not judged
        why = f"not applicable: target {run.target.name} names no metrics (no [metrics] table)"
        wanted = [name for name, on in (("metrics_agree", expect.metrics_agree),
                                        ("errors_surfaced", expect.errors_surfaced)) if on]
        return [Check(name, True, why, applicable=False) for name in wanted]
    try:
        samples = exporter.metrics()
    except (MetricsUnavailable, httpx.HTTPError) as exc:
        wanted = [name for name, on in (("metrics_agree", True), ("errors_surfaced", expect.errors_surfaced)) if on]
        return [Check(name, False, f"metrics unreadable: {exc}") for name in wanted]
    snapshot = MetricsSnapshot(exporter.metric_total("delivered", samples),
                               exporter.metric_total("dead_lettered", samples), len(seen.sink), len(seen.letters),
                               exporter.starts)
    run.result.metrics = snapshot
    run.result.counters = {key: exporter.metric_total(key, samples) for key in run.target.metrics}
    checks = []
    if expect.metrics_agree:
        restarted = exporter.starts > 1 or run.planned_kills > 0 or run.revived
        checks.append(metrics_agree(snapshot, seen, restarted))
    # Interrupted (Ctrl-C): the faults did not run their course, so what they must provoke is not
    # judged; what must never happen (loss, corruption, disorder) still is.
    if expect.errors_surfaced and not run.result.interrupted:
        failures = exporter.error_total(samples)
        errors = [r for r in exporter.log_records() if r.get("level") in ("error", "critical")
                  and (r.get("record_id") is not None or r.get("stage"))]
        checks.append(Check("errors_surfaced", failures > 0 and bool(errors),
                            f"failure counters {failures:.0f}, {len(errors)} error log lines naming a record or stage"))
    return checks


def metrics_agree(counters: MetricsSnapshot, seen: SinkContents, restarted: bool) -> Check:
    """A send reported failed may still have landed (then it is retried: a duplicate), so a counter
    sits between the distinct records and all messages. Above the messages: it counted deliveries
    that never happened. Below the distinct records: something reached the sink that the exporter
    never confirmed, or it failed without counting. Counters restart with the process: after a
    restart only the upper bound still holds."""
    delivered, dead = counters.delivered, counters.dead_lettered
    messages, letters = len(seen.sink), len(seen.letters)
    distinct_sink = len({r.record_id for r in seen.sink})
    distinct_letters = len({x.record_id for x in seen.letters})
    if restarted:
        ok = delivered <= messages and dead <= letters
        rule = "counters since the last start <= sink contents"
    else:
        ok = distinct_sink <= delivered <= messages and distinct_letters <= dead <= letters
        rule = "distinct records <= counters <= sink contents"
    return Check("metrics_agree", ok, f"{rule}: delivered counter {delivered:.0f} vs {distinct_sink} distinct / "
                 f"{messages} messages; dead-lettered counter {dead:.0f} vs {distinct_letters} distinct / "
                 f"{letters} dead letters"
                 + ("" if ok else " (a failure the exporter did not count, or a delivery it counted but never made)"))


def checkpoint_checks(points: list[CheckpointPoint]) -> list[Check]:
    if not points:
        return []
    bad = [p for p in points if p.corrupted or p.unexpected]
    lagging = max(p.missing for p in points)
    return [Check("checkpoints", not bad,
                  f"{len(points)} checkpoint(s); most records not yet settled at one: {lagging}"
                  + (f"; corrupted or unexpected records at t={[p.at for p in bad]}" if bad else ""))]


def resource_check(monitor: ResourceMonitor) -> tuple[Resources, list[Check]]:
    report = monitor.stop()
    resources = Resources(report.samples, report.errors, report.trends)
    if not report.trends:
        # Not a pass by default: nothing is claimed, and the report says why.
        resources.not_judged = (f"no exporter lifetime had {MIN_SAMPLES} samples after warm-up "
                                f"({len(report.samples)} samples in all)")
        return resources, []
    leaks = report.leaks
    return resources, [Check("no_resource_leak", not leaks, "; ".join(t.describe() for t in (leaks or report.trends)))]


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
    records = exporter.log_records()
    important = [r for r in records if r.get("level") in ("error", "critical", "warning")]
    return [json.dumps(r, default=str)[:500] for r in important[-lines:]]
