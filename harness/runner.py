"""Plays one scenario against a running stack and a black-box exporter, and judges it.

Journal (after chaostoolkit): steady state before, the timeline during (every step with the
time it was applied and removed and the evidence it took effect), then heal everything, let
the exporter drain (a condition poll whose deadline scales with the faults injected), read
every sink directly and check the expectations.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from confluent_kafka import KafkaException
from redis import exceptions as redis_errors

from harness.errors import HarnessError
from harness.journal import Check, StepRecord
from harness.knobs import scenario_knobs
from harness.ledger import Ledger, content_hash
from harness.load import LoadRun
from harness.profiles import payloads
from harness.reconcile import DEAD_LETTERED_WITHOUT_REASON, DELIVERED_CORRUPTED, LOST, reconcile
from harness.resources import MIN_SAMPLES, ResourceMonitor
from harness.scenario import (
    Scenario,
    Step,
    Toxic,
    has_window,
    is_fault,
)
from harness.sinks import DeadLetterRecord, SinkProgress, SinkRecord, read_dead_letters, read_lines, read_topic
from harness.stack import Stack
from harness.steps.disk import release_disks
from harness.tap import BufferTap
from harness.target import ExporterProcess, KnobMissing, MetricsUnavailable, RunContext, TargetDefinition
from harness.timeline import Sampler, WriteClock, deliveries
from harness.waiting import WaitTimeout, wait_for
from harness.workload import SourceWriter


@dataclass
class ScenarioResult:
    name: str
    description: str
    incident: str | None
    verdict: str = "error"  # pass | fail | error | skipped (the backend cannot perform a step)
    checks: list[Check] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    ledger: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    steady_state: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None
    log_excerpt: list[str] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)
    recovery_s: float | None = None
    interrupted: bool = False
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    load: list[dict[str, Any]] = field(default_factory=list)
    report_errors: list[str] = field(default_factory=list)  # reports about it that could not be written

    @property
    def violations(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Interrupted(HarnessError):
    """Ctrl-C during the timeline: faults are healed and the run is still judged and reported."""


class ScenarioRunner:
    def __init__(self, stack: Stack, target: TargetDefinition, scenario: Scenario, workdir: Path,
                 extra_env: dict[str, str] | None = None, interrupt: threading.Event | None = None,
                 on_step: Callable[[str, StepRecord], None] | None = None) -> None:
        self.stack = stack
        self.target = target
        self.scenario = scenario.validate()
        self.extra_env = extra_env or {}
        self.env: dict[str, str] = {}  # the exporter's environment: knobs as the target names them, then extras
        self.interrupt = interrupt or threading.Event()
        namespace = f"s_{scenario.name}_{uuid.uuid4().hex[:6]}"
        self.ctx = RunContext(stack, namespace, workdir / scenario.name)
        self.writer = SourceWriter(stack, self.ctx.source_table)
        self.ledger = Ledger()
        self.result = ScenarioResult(scenario.name, scenario.description, scenario.incident)
        self.exporter: ExporterProcess | None = None
        self.t0 = 0.0
        self._written = 0
        self.planned_kills = 0
        self._revived = False  # the exporter died by itself and was started again to drain
        self.mounted: list[Path] = []
        self.immutable: list[Path] = []
        self._active: list[tuple[Step, StepRecord, Any]] = []  # windowed steps applied: (step, record, handle)
        self.closers: list[Callable[[], None]] = []  # last-resort undo a step registers (run at cleanup)
        self.on_step = on_step or (lambda _event, _record: None)
        self.clock = WriteClock()
        self.wall_start = 0.0
        self.sampler: Sampler | None = None
        self.monitor: ResourceMonitor | None = None
        self.tap: BufferTap | None = None
        self.loads: list[LoadRun] = []  # Locust runs under way
        self._unknown: list[Any] = []  # writes whose commit outcome was unknown when made
        self._resolved = 0
        self._resolve_error: str | None = None
        self._progress: SinkProgress | None = None
        self._meter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="in-flight")
        self._meters: list[Future[None]] = []
        self._ok_at_apply: dict[int, int] = {}  # per windowed fault step: acknowledged writes when applied
        self._ok_writes = 0  # acknowledged writes so far (the harness's own and held transactions')

    # -- public ----------------------------------------------------------------------------------
    def run(self) -> ScenarioResult:
        self.t0 = time.monotonic()
        self.wall_start = time.time()
        reasons = [r for s in self.scenario.steps if (r := self.stack.backend.unsupported(s.do))]
        try:
            self.env = {**self.target.knob_env(scenario_knobs(self.scenario.sink, self.scenario.knobs)),
                        **self.scenario.exporter_env, **self.extra_env}
        except KnobMissing as exc:
            reasons.append(f"{exc}: scenario {self.scenario.name} cannot run against it")
        if reasons:
            # Not a pass and not a failure: the run could not happen here, and the report says why.
            self.result.verdict = "skipped"
            self.result.error = reasons[0]
            return self.result
        try:
            self.stack.reset()
            self.ctx.workdir.mkdir(parents=True, exist_ok=True)
            self.writer.create()
            self.exporter = ExporterProcess(self.target, self.ctx,
                                            extra_env=self.env)
            self._prepare_steps()
            self.tap = BufferTap(self.stack, self.exporter.sink("buffer_stream"), self.exporter.sink("buffer_group"),
                                 ids_field=self.exporter.target.sinks.get("buffer_ids_field", "id"),
                                 ids_separator=self.exporter.target.sinks.get("buffer_ids_separator", ",")).start()
            self.exporter.start()
            self.sampler = Sampler(self.stack, self.exporter.sink("buffer_stream"), self._counters, self.t0).start()
            if self.scenario.expect.no_resource_leak:
                self.monitor = ResourceMonitor(lambda: self.exporter.pid() if self.exporter else None,
                                               self.t0).start()
            self._before()
            self._during()
            healed_at = self._heal()
            self._phase("after")
            self._judge(self.tap, healed_at)
            self.result.verdict = "pass" if not self.result.violations else "fail"
        except HarnessError as exc:
            self.result.verdict = "error"
            self.result.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug in the harness is a harness error (exit 2), not a verdict
            self.result.verdict = "error"
            self.result.error = f"harness bug: {exc.__class__.__name__}: {exc}\n{traceback.format_exc()}"
        finally:
            self._cleanup()
            self.result.duration_s = round(time.monotonic() - self.t0, 3)
        return self.result

    # -- phases ----------------------------------------------------------------------------------
    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def _before(self) -> None:
        """Steady state before any fault: healthy, and the first half of the workload flowing through."""
        exporter = self.live_exporter()
        healthy = exporter.get(self.target.ready_path, timeout=5).status_code == 200
        self.write(int(self.scenario.workload.records * self.scenario.workload.before_fraction))
        expected = len(self.ledger.ids("ok"))
        def flowed() -> bool:
            try:
                samples = exporter.metrics(timeout=2)
            except (MetricsUnavailable, httpx.HTTPError):
                return False  # a scrape that fails now is judged at the end, by metrics_agree
            return exporter.metric_total("delivered", samples) + exporter.metric_total("dead_lettered", samples) \
                >= expected

        try:
            wait_for(flowed, timeout=30, interval=0.1, what=f"the first {expected} records to flow before any fault")
            flowing = True
        except WaitTimeout:
            flowing = False
        self.result.steady_state["before"] = {"healthy": healthy, "flowing": flowing, "records": expected}
        self.result.checks.append(Check(
            "steady_state_before", healthy and flowing,
            f"exporter healthy={healthy}; first {expected} records delivered or dead-lettered={flowing}"))
        self._phase("before")

    def _during(self) -> None:
        steps = sorted((s for s in self.scenario.steps if s.phase == "during"), key=lambda s: s.at)
        end = max([self.scenario.during_s] + [s.at + (s.duration or 0) for s in steps])
        remaining = self.scenario.workload.records - self._written
        chunk = self.scenario.workload.chunk
        writes = [(end * i / max(1, -(-remaining // chunk)), min(chunk, remaining - i * chunk))
                  for i in range(-(-remaining // chunk))] if remaining > 0 else []
        events: list[tuple[float, int, Any]] = [(at, 1, ("write", n)) for at, n in writes]
        for step in steps:
            events.append((step.at, 0, ("apply", step)))
            if is_fault(step) and self.scenario.workload.meet_faults:
                events.append((step.at, 1, ("write", self.scenario.workload.meet_faults)))  # just after it
            if step.duration is not None:
                events.append((step.at + step.duration, 2, ("remove", step)))
        events.sort(key=lambda e: (e[0], e[1]))
        start = time.monotonic()
        try:
            for at, _order, (kind, payload) in events:
                self._wait_until(start + at)
                if kind == "write":
                    self.write(payload)
                elif kind == "apply":
                    self._apply(payload)
                else:
                    self._remove(payload)
            self._wait_until(start + end)
        except Interrupted:
            # Ctrl-C: stop the timeline here, but heal, drain, reconcile and report as usual.
            self.result.interrupted = True
            self.on_step("interrupted", StepRecord("during", "interrupted (Ctrl-C)", applied_at=self.now()))
        exporter = self.live_exporter()
        self.result.steady_state["during"] = {"exporter_running": exporter.running()}
        for step, _record, _handle in list(self._active):
            self._remove(step)

    def _phase(self, phase: str) -> None:
        """Actions of the before or after phase, in order (faults live in 'during' only)."""
        for step in sorted((s for s in self.scenario.steps if s.phase == phase), key=lambda s: s.at):
            self._apply(step)

    def _wait_until(self, deadline: float) -> None:
        # The timeline's own clock (fault windows are part of the scenario), interruptible by Ctrl-C.
        remaining = deadline - time.monotonic()
        if remaining > 0 and self.interrupt.wait(remaining):
            raise Interrupted(f"scenario {self.scenario.name}: interrupted")

    # -- workload ----------------------------------------------------------------------------------
    def next_rows(self, n: int) -> list[tuple[str, bytes]]:
        """The workload's next ``n`` rows (keys unique within the scenario)."""
        w = self.scenario.workload
        bodies = payloads(w.profile, n, w.size, w.seed, start=self._written)
        rows = [(f"{self.scenario.name}-{self._written + i}", body) for i, body in enumerate(bodies)]
        self._written += n
        return rows

    def write(self, count: int) -> None:
        done = 0
        while done < count:
            n = min(self.scenario.workload.chunk, count - done)
            at = self.now()
            self.record_writes(self.writer.insert(self.next_rows(n)), at)
            done += n

    def record_writes(self, inserted: list[Any], at: float) -> None:
        for written in inserted:
            if written.outcome == "indeterminate":
                self._unknown.append(written)  # resolved against the source before judging
                continue
            self.ledger.add(written.record_id, content_hash(written.payload), written.outcome)
            self._ok_writes += written.outcome == "ok"
        ids = [x.record_id for x in inserted if x.record_id is not None]
        if ids:
            self.clock.add(min(ids), at)

    def _measure_in_flight(self, record: StepRecord) -> None:
        """Set ``record.in_flight_at_apply``: acknowledged writes (as of now, the apply time) not yet
        in the sink nor dead-lettered. The sink is read on a background thread so that the
        timeline is not delayed; nothing is set while a server it reads is down by design."""
        if any({"restart:kafka", "restart:redis"} & s.do.needs() for s, _r, _h in self._active):
            return
        written = self.ledger.ids("ok")
        exporter = self.live_exporter()
        if self._progress is None:
            self._progress = SinkProgress(self.stack, exporter.sink("kafka_topic"))
        progress = self._progress

        def measure() -> None:
            try:
                if self.scenario.sink == "file":
                    reached = {r.record_id for r in read_lines(Path(exporter.sink("file_sink")))}
                else:
                    reached = set(progress.update())
                letters = read_dead_letters(self.stack, exporter.sink("dead_letter_stream"))
            except (HarnessError, OSError, redis_errors.RedisError, KafkaException):
                return  # unreadable now: the figure stays unknown (None), never guessed
            reached |= {int(x.record_id) for x in letters if x.record_id.isdigit()}
            record.in_flight_at_apply = len(written - reached)

        self._meters.append(self._meter.submit(measure))

    # -- faults and actions ------------------------------------------------------------------------
    def _apply(self, step: Step) -> None:
        record = StepRecord(step.phase, step.describe(), applied_at=self.now(),
                            window_s=(step.duration or self.scenario.during_s) if has_window(step) else None)
        if is_fault(step):
            self._measure_in_flight(record)
            self._ok_at_apply[id(step)] = self._ok_writes
        self.result.steps.append(record)
        handle = step.do.apply(self, record)
        if has_window(step):  # applied now, removed when its window ends
            self._active.append((step, record, handle))
        else:
            record.removed_at = record.applied_at
        self.on_step("applied", record)

    def _remove(self, step: Step) -> None:
        match = [entry for entry in self._active if entry[0] is step]
        if not match:
            return
        self._active.remove(match[0])
        _step, record, handle = match[0]
        step.do.remove(self, handle, record)
        record.removed_at = self.now()
        if id(step) in self._ok_at_apply:
            record.written_during = self._ok_writes - self._ok_at_apply.pop(id(step))
        self.on_step("removed", record)

    def _prepare_steps(self) -> None:
        """Before the exporter starts: what a step kind sets up for the whole run (a small disk)."""
        for step in self.scenario.steps:
            prepare = getattr(step.do, "prepare", None)
            if prepare is not None:
                prepare(self)

    # -- heal, drain, judge ------------------------------------------------------------------------
    def _heal(self) -> float:
        exporter = self.live_exporter()
        died = not exporter.running()
        exit_code = exporter.exit_code()
        self.stack.reset()  # every toxic gone, every link up, every server running
        expected_starts = 1 + self.planned_kills
        alive = not died and exporter.starts == expected_starts
        self.result.checks.append(Check(
            "process_alive", alive or not self.scenario.expect.process_alive,
            f"exporter started {exporter.starts} time(s) for {self.planned_kills} planned kill(s); "
            + (f"it exited by itself with code {exit_code}" if died else "still running")))
        if died:
            self._revived = True
            exporter.close()  # collect it, then bring it back so what it left can still be delivered
            self.exporter = ExporterProcess(self.target, self.ctx,
                                            extra_env=self.env)
            self.exporter.start()
        return time.monotonic()

    def _drain_deadline(self) -> float:
        # Waits scale with the faults injected (too-tight timeouts are an incident of their own).
        latency = sum(int(s.do.attributes.get("latency", 0)) for s in self.scenario.steps if isinstance(s.do, Toxic))
        return 30.0 + 2 * self.scenario.fault_seconds + latency / 100

    def _resolve_unknown_writes(self) -> None:
        """A write whose connection broke may or may not have committed: ask the source (healed by
        now). In it: it must be delivered. Not in it: it never happened. Unreachable: it stays
        indeterminate (neither its absence nor its presence in a sink is a violation)."""
        if not self._unknown:
            return
        try:
            found: dict[str, int] | None = self.writer.resolve([w.key for w in self._unknown])
        except psycopg.Error as exc:
            found = None
            self._resolve_error = f"{exc.__class__.__name__}: {exc}"  # reported with the ledger
        for written in self._unknown:
            digest = content_hash(written.payload)
            if found is None:
                self.ledger.add(None, digest, "indeterminate")
            elif written.key in found:
                self.ledger.add(found[written.key], digest, "ok")
            else:
                self.ledger.add(None, digest, "failed")
        self._resolved += len(self._unknown)
        self._unknown = []

    def _judge(self, tap: BufferTap, healed_at: float) -> None:
        for meter in self._meters:
            meter.result(timeout=60)  # every fault's in-flight figure is in the journal before judging
        self._resolve_unknown_writes()
        exporter = self.live_exporter()
        expect = self.scenario.expect
        ok_ids = self.ledger.ids("ok")
        seen: dict[str, Any] = {"sink": [], "letters": []}
        quiet = {"since": time.monotonic(), "count": -1}

        def accounted() -> bool:
            sink, letters, ids = self.settled(exporter)
            seen["sink"], seen["letters"] = sink, letters
            if ok_ids <= ids:
                return True
            count = len(sink) + len(letters)
            if count != quiet["count"]:
                quiet["since"], quiet["count"] = time.monotonic(), count
            # No progress for 5 s with an empty buffer: the exporter has given all it will give.
            return time.monotonic() - quiet["since"] > 5 and self._buffer_idle(tap)

        try:
            wait_for(accounted, timeout=self._drain_deadline(), interval=0.5, what="the exporter to drain")
            recovered = time.monotonic() - healed_at
            self.result.recovery_s = round(recovered, 3)
            self.result.checks.append(Check("recovered_within", recovered <= expect.recovered_within_s,
                                            f"drained {recovered:.1f}s after healing "
                                            f"(bound {expect.recovered_within_s}s)"))
        except WaitTimeout as exc:
            self.result.checks.append(Check("recovered_within", False, str(exc)))
        steady_after = exporter.get(self.target.ready_path, timeout=5).status_code == 200
        self.result.steady_state["after"] = {"healthy": steady_after}
        self.result.checks.append(Check("steady_state_after", steady_after, "exporter healthy after healing"))
        if self.sampler is not None:
            timeline = self.sampler.stop()
            self.sampler = None
            self.result.series = timeline.to_series(*deliveries(seen["sink"], self.clock, self.wall_start))
        evidence = tap.evidence()
        outcome = reconcile(self.ledger, seen["sink"], [x for x in seen["letters"]
                                                        if x.stage != exporter.sink("export_dead_letter_stage")],
                            evidence)
        summary = outcome.summary()
        summary["writes"] = self.ledger.outcome_counts()
        summary["tap_error"] = repr(tap.error) if tap.error else None
        summary["resolved_from_source"] = self._resolved
        summary["resolve_error"] = self._resolve_error
        self.result.ledger = summary
        if expect.no_loss:
            lost = outcome.classes.get(LOST, [])
            hops = {outcome.lost_hops[i] for i in lost}
            detail = (f"{len(lost)} lost; ids {sorted(lost)[:10]}; hops {sorted(hops)}" if lost
                      else "every acknowledged write accounted for")
            self.result.checks.append(Check("no_loss", not lost, detail))
        if expect.no_corruption:
            bad = outcome.classes.get(DELIVERED_CORRUPTED, [])
            self.result.checks.append(Check("no_corruption", not bad, f"{len(bad)} corrupted; ids {sorted(bad)[:10]}"
                                            if bad else "every delivered record byte for byte"))
        if expect.dead_letters_have_reasons:
            bad = outcome.classes.get(DEAD_LETTERED_WITHOUT_REASON, [])
            self.result.checks.append(Check("dead_letters_have_reasons", not bad,
                                            f"{len(bad)} without reason: {sorted(bad)[:10]}" if bad else
                                            f"{outcome.count('dead_lettered')} dead letters, each with a reason"))
        if expect.dead_lettered_at_least:
            n = outcome.count("dead_lettered")
            self.result.checks.append(Check("dead_lettered", n >= expect.dead_lettered_at_least,
                                            f"{n} dead-lettered (expected at least {expect.dead_lettered_at_least})"))
        self.result.checks.append(Check("no_unexpected", not outcome.unexpected,
                                        f"{len(outcome.unexpected)} unexpected: {outcome.unexpected[:5]}"
                                        if outcome.unexpected else "nothing in the sinks that was not written"))
        self._check_metrics(exporter, seen["sink"], seen["letters"])
        self._check_errors_surfaced(exporter)
        self._check_checkpoints()
        self._check_resources()
        self.result.log_excerpt = _log_excerpt(exporter)

    def _check_checkpoints(self) -> None:
        if not self.result.checkpoints:
            return
        bad = [p for p in self.result.checkpoints if p["corrupted"] or p["unexpected"]]
        lagging = max(p["missing"] for p in self.result.checkpoints)
        self.result.checks.append(Check(
            "checkpoints", not bad,
            f"{len(self.result.checkpoints)} checkpoint(s); most records not yet settled at one: {lagging}"
            + (f"; corrupted or unexpected records at t={[p['at'] for p in bad]}" if bad else "")))

    def _check_resources(self) -> None:
        if self.monitor is None:
            return
        report = self.monitor.stop()
        self.monitor = None
        self.result.resources = {
            "samples": [asdict(s) for s in report.samples], "sample_errors": report.errors,
            "trends": [asdict(t) for t in report.trends]}
        if not report.trends:
            # Not a pass by default: nothing is claimed, and the report says why.
            self.result.resources["not_judged"] = (f"no exporter lifetime had {MIN_SAMPLES} samples after warm-up "
                                                   f"({len(report.samples)} samples in all)")
            return
        leaks = report.leaks
        self.result.checks.append(Check(
            "no_resource_leak", not leaks,
            "; ".join(t.describe() for t in (leaks or report.trends))))

    def settled(self, exporter: ExporterProcess) -> tuple[list[SinkRecord], list[DeadLetterRecord], set[int]]:
        """Everything in the sinks and the dead-letter stream now, and the record ids it covers."""
        sink = self._sink_records(exporter)
        letters = read_dead_letters(self.stack, exporter.sink("dead_letter_stream"))
        ids = {r.record_id for r in sink if r.record_id is not None}
        ids |= {int(x.record_id) for x in letters if x.record_id.isdigit()}
        return sink, letters, ids

    def _sink_records(self, exporter: ExporterProcess) -> list[SinkRecord]:
        if self.scenario.sink == "file":
            return read_lines(Path(exporter.sink("file_sink")))
        return list(read_topic(self.stack, exporter.sink("kafka_topic")))

    def _buffer_idle(self, tap: BufferTap) -> bool:
        evidence = tap.evidence()
        return not evidence.present and not evidence.pending

    def _check_metrics(self, exporter: ExporterProcess, sink: list[SinkRecord],
                       letters: list[DeadLetterRecord]) -> None:
        try:
            delivered = exporter.metric_total("delivered")
            dead = exporter.metric_total("dead_lettered")
        except (MetricsUnavailable, httpx.HTTPError) as exc:
            self.result.checks.append(Check("metrics_agree", False, f"metrics unreadable: {exc}"))
            return
        self.result.metrics = {"delivered": delivered, "dead_lettered": dead, "sink_messages": len(sink),
                               "dead_letter_entries": len(letters), "exporter_starts": exporter.starts}
        if not self.scenario.expect.metrics_agree:
            return
        restarted = exporter.starts > 1 or self.planned_kills > 0 or self._revived
        distinct_sink = len({r.record_id for r in sink})
        distinct_letters = len({x.record_id for x in letters})
        # A send reported failed may still have landed (then it is retried: a duplicate), so a
        # counter sits between the distinct records and all messages. Above the messages: it
        # counted deliveries that never happened. Below the distinct records: something reached
        # the sink that the exporter never confirmed, or it failed without counting.
        if restarted:
            # Counters restart with the process: only the upper bound still holds.
            ok = delivered <= len(sink) and dead <= len(letters)
            rule = "counters since the last start <= sink contents"
        else:
            ok = distinct_sink <= delivered <= len(sink) and distinct_letters <= dead <= len(letters)
            rule = "distinct records <= counters <= sink contents"
        self.result.checks.append(Check(
            "metrics_agree", ok, f"{rule}: delivered counter {delivered:.0f} vs {distinct_sink} distinct / "
            f"{len(sink)} messages; dead-lettered counter {dead:.0f} vs {distinct_letters} distinct / "
            f"{len(letters)} dead letters"
            + ("" if ok else " (a failure the exporter did not count, or a delivery it counted but never made)")))

    def _check_errors_surfaced(self, exporter: ExporterProcess) -> None:
        if not self.scenario.expect.errors_surfaced:
            return
        try:
            samples = exporter.metrics()
        except (MetricsUnavailable, httpx.HTTPError) as exc:
            self.result.checks.append(Check("errors_surfaced", False, f"metrics unreadable: {exc}"))
            return
        failures = sum(exporter.metric_total(k, samples) for k in ("send_failures", "retries")
                       if k in self.target.metrics)
        errors = [r for r in exporter.log_records() if r.get("level") in ("error", "critical")
                  and (r.get("record_id") is not None or r.get("stage"))]
        ok = failures > 0 and bool(errors)
        self.result.checks.append(Check("errors_surfaced", ok, f"failure counters {failures:.0f}, "
                                        f"{len(errors)} error log lines naming a record or stage"))

    def _counters(self) -> tuple[float, float]:
        exporter = self.live_exporter()
        samples = exporter.metrics(timeout=1.0)
        errors = sum(exporter.metric_total(k, samples) for k in ("send_failures", "retries")
                     if k in self.target.metrics)
        return exporter.metric_total("delivered", samples), errors

    # -- cleanup ---------------------------------------------------------------------------------
    def live_exporter(self) -> ExporterProcess:
        if self.exporter is None:
            raise HarnessError(f"scenario {self.scenario.name}: exporter not started")
        return self.exporter

    def _cleanup(self) -> None:
        problems = []
        if self.sampler is not None:
            self.sampler.stop()
        if self.monitor is not None:
            self.monitor.stop()
        for step, _record, _handle in list(self._active):
            try:
                self._remove(step)
            except (HarnessError, OSError) as exc:
                problems.append(f"removing {step.describe()}: {exc}")
        self._meter.shutdown(wait=True, cancel_futures=True)
        while self.closers:
            self.closers.pop()()  # what a step asked to undo whatever happened (an open transaction)
        release_disks(self)
        if self.tap is not None:
            self.tap.close()
        if self.exporter is not None:
            self.result.log_excerpt = self.result.log_excerpt or _log_excerpt(self.exporter)
            self.exporter.close()
        if problems and self.result.error is None:
            self.result.verdict = "error"
            self.result.error = "; ".join(problems)


def _log_excerpt(exporter: ExporterProcess, lines: int = 30) -> list[str]:
    records = exporter.log_records()
    important = [r for r in records if r.get("level") in ("error", "critical", "warning")]
    return [json.dumps(r, default=str)[:500] for r in important[-lines:]]


def scenario_workdir(base: Path) -> Path:
    path = base / "work"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)
    return path
