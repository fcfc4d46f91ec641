"""Plays one scenario against a running stack and a black-box exporter, and judges it.

Journal (after chaostoolkit): steady state before, the timeline during (every step with the
time it was applied and removed and the evidence it took effect), then heal everything, let
the exporter drain (a condition poll whose deadline scales with the faults injected), read
every sink directly and check the expectations.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
from confluent_kafka import KafkaException
from redis import exceptions as redis_errors

from harness.errors import HarnessError
from harness.knobs import scenario_knobs
from harness.ledger import Ledger, content_hash
from harness.load import LoadRun
from harness.profiles import payloads
from harness.reconcile import DEAD_LETTERED_WITHOUT_REASON, DELIVERED_CORRUPTED, LOST, reconcile
from harness.resources import MIN_SAMPLES, ResourceMonitor
from harness.scenario import (
    Checkpoint,
    DiskFull,
    Export,
    ExportBurst,
    FreezeExporter,
    HeldTransaction,
    KillExporter,
    LinkDown,
    Load,
    Pause,
    ReadOnlyDir,
    RestartService,
    Resume,
    Scenario,
    Step,
    Toxic,
    Write,
    has_window,
    is_fault,
)
from harness.sinks import DeadLetterRecord, SinkProgress, SinkRecord, read_dead_letters, read_lines, read_topic
from harness.stack import Stack
from harness.tap import BufferTap
from harness.target import ExporterProcess, KnobMissing, MetricsUnavailable, RunContext, TargetDefinition
from harness.timeline import Sampler, WriteClock, deliveries
from harness.waiting import WaitTimeout, wait_for
from harness.workload import HeldWrite, SourceWriter

PAUSE_MARGIN_S = 1.5


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class StepRecord:
    phase: str
    description: str
    applied_at: float | None = None
    removed_at: float | None = None
    evidence: str = ""
    result: dict[str, Any] | None = None
    # Faults only: records written (acknowledged) but not yet in the sink or dead-lettered when the
    # fault was applied, and records acknowledged while its window was open. A fault that meets no
    # data cannot show a loss (None: could not be read).
    in_flight_at_apply: int | None = None
    written_during: int | None = None

    @property
    def met_data(self) -> int | None:
        """Records exposed to this fault: in flight when it came, or written while it lasted."""
        if self.in_flight_at_apply is None and self.written_during is None:
            return None
        return (self.in_flight_at_apply or 0) + (self.written_during or 0)


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
        self._planned_kills = 0
        self._revived = False  # the exporter died by itself and was started again to drain
        self._mounted: list[Path] = []
        self._immutable: list[Path] = []
        self._active: list[tuple[Step, StepRecord]] = []
        self.on_step = on_step or (lambda _event, _record: None)
        self.clock = WriteClock()
        self.wall_start = 0.0
        self.sampler: Sampler | None = None
        self.monitor: ResourceMonitor | None = None
        self.tap: BufferTap | None = None
        self._loads: dict[int, LoadRun] = {}
        self._unknown: list[Any] = []  # writes whose commit outcome was unknown when made
        self._resolved = 0
        self._resolve_error: str | None = None
        self._held: dict[int, HeldWrite] = {}  # open transactions of HeldTransaction steps
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
            self._mount_small_disks()
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
    def _now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def _before(self) -> None:
        """Steady state before any fault: healthy, and the first half of the workload flowing through."""
        exporter = self._exporter()
        healthy = exporter.get(self.target.ready_path, timeout=5).status_code == 200
        self._write(int(self.scenario.workload.records * self.scenario.workload.before_fraction))
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
                    self._write(payload)
                elif kind == "apply":
                    self._apply(payload)
                else:
                    self._remove(payload)
            self._wait_until(start + end)
        except Interrupted:
            # Ctrl-C: stop the timeline here, but heal, drain, reconcile and report as usual.
            self.result.interrupted = True
            self.on_step("interrupted", StepRecord("during", "interrupted (Ctrl-C)", applied_at=self._now()))
        exporter = self._exporter()
        self.result.steady_state["during"] = {"exporter_running": exporter.running()}
        for step, _record in list(self._active):
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
    def _next_rows(self, n: int) -> list[tuple[str, bytes]]:
        """The workload's next ``n`` rows (keys unique within the scenario)."""
        w = self.scenario.workload
        bodies = payloads(w.profile, n, w.size, w.seed, start=self._written)
        rows = [(f"{self.scenario.name}-{self._written + i}", body) for i, body in enumerate(bodies)]
        self._written += n
        return rows

    def _write(self, count: int) -> None:
        done = 0
        while done < count:
            n = min(self.scenario.workload.chunk, count - done)
            at = self._now()
            self._record_writes(self.writer.insert(self._next_rows(n)), at)
            done += n

    def _record_writes(self, inserted: list[Any], at: float) -> None:
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
        if any(isinstance(s.do, RestartService) and s.do.service in ("kafka", "redis") for s, _r in self._active):
            return
        written = self.ledger.ids("ok")
        exporter = self._exporter()
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
        record = StepRecord(step.phase, step.describe(), applied_at=self._now())
        if is_fault(step):
            self._measure_in_flight(record)
            self._ok_at_apply[id(step)] = self._ok_writes
        self.result.steps.append(record)
        do = step.do
        exporter = self._exporter()
        if isinstance(do, Toxic):
            toxic = self.stack.proxy(do.link).add_toxic(do.type, stream=do.stream, toxicity=do.toxicity,
                                                        name=f"{do.type}_{do.stream}_{len(self.result.steps)}",
                                                        **dict(do.attributes))
            record.evidence = f"toxic listed by toxiproxy: {toxic.name} {toxic.attributes}"
        elif isinstance(do, LinkDown):
            proxy = self.stack.proxy(do.link)
            proxy.disable()
            record.evidence = f"proxy {do.link} enabled={proxy.enabled}"
        elif isinstance(do, KillExporter):
            self._planned_kills += 1
            exporter.kill()
            record.evidence = f"exporter running={exporter.running()}"
        elif isinstance(do, FreezeExporter):
            exporter.freeze()
            record.evidence = "SIGSTOP sent to the exporter's process group"
        elif isinstance(do, RestartService):
            (self.stack.kill if do.kill else self.stack.stop)(do.service)
            if do.wipe:
                self.stack.backend.wipe_service_data(do.service)
            record.evidence = f"{do.service} {'killed' if do.kill else 'stopped'}" + (", data wiped" if do.wipe else "")
        elif isinstance(do, DiskFull):
            record.evidence = self._fill_disk(do)
        elif isinstance(do, ReadOnlyDir):
            record.evidence = self._set_immutable(self._directory(do.directory), True)
        elif isinstance(do, HeldTransaction):
            record.evidence = self._hold_transaction(step, do)
        elif isinstance(do, Write):
            self._write(do.records)
            record.evidence = f"{do.records} records written"
        elif isinstance(do, Pause):
            record.result = self._pause(do)
        elif isinstance(do, Resume):
            reply = exporter.post(self.target.resume_path, timeout=10)
            record.result = {"status_code": reply.status_code}
        elif isinstance(do, Export):
            record.result = self._export(do)
        elif isinstance(do, ExportBurst):
            record.result = self._export_burst(do)
        elif isinstance(do, Checkpoint):
            record.result = self._checkpoint(do)
        elif isinstance(do, Load):
            n, workload = len(self._loads), self.scenario.workload
            load = LoadRun(do, step.duration or self.scenario.during_s, self.ctx.workdir / f"load-{n}",
                           dsn=self.stack.postgres_dsn(proxied=False), table=self.ctx.source_table,
                           base_url=f"http://127.0.0.1:{self.ctx.http_port}", exports_path=self.target.exports_path,
                           key_prefix=f"{self.scenario.name}-load{n}", profile=workload.profile,
                           size=workload.size, seed=workload.seed + n)
            self._loads[id(step)] = load
            load.start()
            record.evidence = f"locust running, pid {load.pid}"
        if has_window(step):  # applied now, removed when its window ends
            self._active.append((step, record))
        else:
            record.removed_at = record.applied_at
        self.on_step("applied", record)

    def _remove(self, step: Step) -> None:
        match = [(s, r) for s, r in self._active if s is step]
        if not match:
            return
        _step, record = match[0]
        self._active.remove(match[0])
        do = step.do
        exporter = self._exporter()
        if isinstance(do, Toxic):
            proxy = self.stack.proxy(do.link)
            name = record.evidence.split(": ", 1)[1].split(" ", 1)[0]
            proxy.remove_toxic(name)
        elif isinstance(do, LinkDown):
            self.stack.proxy(do.link).enable()
        elif isinstance(do, KillExporter):
            exporter.start()
        elif isinstance(do, FreezeExporter):
            exporter.thaw()
        elif isinstance(do, RestartService):
            self.stack.start(do.service)
        elif isinstance(do, DiskFull):
            self._free_disk(do)
        elif isinstance(do, ReadOnlyDir):
            self._set_immutable(self._directory(do.directory), False)
        elif isinstance(do, HeldTransaction):
            at = self._now()
            committed = self._held.pop(id(step)).commit()
            self._record_writes(committed, at)
            record.evidence += f"; committed: {committed[0].outcome if committed else 'nothing'}"
        elif isinstance(do, Load):
            self._finish_load(self._loads.pop(id(step)), record)
        record.removed_at = self._now()
        if id(step) in self._ok_at_apply:
            record.written_during = self._ok_writes - self._ok_at_apply.pop(id(step))
        self.on_step("removed", record)

    def _hold_transaction(self, step: Step, do: HeldTransaction) -> str:
        try:
            held = self.writer.begin(self._next_rows(do.records))
        except psycopg.Error as exc:
            raise HarnessError(f"scenario {self.scenario.name}: cannot open the held transaction: {exc}") from exc
        self._held[id(step)] = held
        at = self._now()
        later = self.writer.insert(self._next_rows(do.then_write)) if do.then_write else []
        self._record_writes(later, at)
        later_ids = [w.record_id for w in later if w.record_id is not None]
        return (f"transaction open holding ids {held.lowest_id}..{max(held.ids.values())}; {len(later_ids)} later "
                f"rows committed" + (f" with ids {min(later_ids)}..{max(later_ids)}" if later_ids else ""))

    def _pause(self, do: Pause) -> dict[str, Any]:
        exporter = self._exporter()
        started = time.monotonic()
        try:
            reply = exporter.post(self.target.pause_path, params={"grace": do.grace_s},
                                  timeout=do.grace_s + PAUSE_MARGIN_S + 2)
            body = reply.json()
        except httpx.TimeoutException:
            body = {"state": "no answer"}
        elapsed = round(time.monotonic() - started, 3)
        ok = body.get("state") == "paused" and elapsed <= do.grace_s + PAUSE_MARGIN_S
        self.result.checks.append(Check(
            "pause_within_grace", ok,
            f"pause answered {body.get('state')!r} after {elapsed}s (grace {do.grace_s}s + {PAUSE_MARGIN_S}s); "
            f"drained={body.get('drained')} pending={body.get('pending')} error={body.get('error')!r}"))
        return {"elapsed_s": elapsed, **body}

    def _export(self, do: Export) -> dict[str, Any]:
        exporter = self._exporter()
        submitted_at = self.ledger.span  # rows written after this may or may not be exported
        reply = exporter.post(self.target.exports_path, json={
            "user": f"faultline-{self.scenario.name}", "format": do.format, "encoding": do.encoding,
            "destination": {"kind": "file", "name": do.name}}, timeout=30)
        if reply.status_code != 202:
            self.result.checks.append(Check(f"export:{do.name}", False,
                                            f"submission answered {reply.status_code}: {reply.text[:300]}"))
            return {"status_code": reply.status_code}
        job_id = reply.json()["id"]
        job = wait_for(lambda: self._finished_job(job_id), timeout=60 + self.scenario.fault_seconds,
                       what=f"export job {job_id} to finish")
        export_dir = Path(exporter.sink("export_dir"))
        final = export_dir / do.name
        leftovers = sorted(p.name for p in export_dir.iterdir() if p.name != do.name) if export_dir.exists() else []
        state_ok = job["state"] == do.expect_state
        detail = f"job {job_id} ended {job['state']!r} (expected {do.expect_state!r})"
        if job["state"] == "failed":
            clean = not final.exists() and not leftovers and bool(job.get("error"))
            detail += f"; error={job.get('error')!r}; final file present={final.exists()}; leftovers={leftovers}"
            self.result.checks.append(Check(f"export:{do.name}", state_ok and clean, detail))
            return job
        letters = [x for x in read_dead_letters(self.stack, exporter.sink("dead_letter_stream"))
                   if x.stage == exporter.sink("export_dead_letter_stage")]
        records = [r for r in read_lines(final, do.encoding) if r.record_id is not None]
        # Lines were decoded with the export's encoding; hashes compare the text as UTF-8, like the ledger.
        exported = self.ledger.copy()
        exported.mark_indeterminate_from(submitted_at)
        outcome = reconcile(exported, records, letters)
        bad = outcome.violations()
        detail += f"; rows file={len(records)} dead-lettered={len(letters)}; " + (
            f"violations: {', '.join(bad)}; samples {outcome.summary()['samples']}" if bad else "every row intact "
            "or dead-lettered with a reason")
        self.result.checks.append(Check(f"export:{do.name}", state_ok and not bad, detail))
        return job

    def _finished_job(self, job_id: str) -> dict[str, Any] | None:
        """The job's status once it is completed or failed; None while it runs."""
        job: dict[str, Any] = self._exporter().get(f"{self.target.exports_path}/{job_id}", timeout=10).json()
        return job if job.get("state") in ("completed", "failed") else None

    def _export_burst(self, do: ExportBurst) -> dict[str, Any]:
        exporter = self._exporter()
        submitted_at = self.ledger.span
        bodies: list[dict[str, Any]] = [{"user": f"burst-{u}", "format": "jsonl",
                                         "destination": {"kind": "file", "name": f"burst-{u}-{n}.jsonl"}}
                                        for u in range(do.users) for n in range(do.jobs)]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="burst") as pool:
            replies = list(pool.map(lambda body: exporter.post(self.target.exports_path, json=body, timeout=30),
                                    bodies))
        accepted: dict[str, list[str]] = {}
        refused_badly = []
        for body, reply in zip(bodies, replies, strict=True):
            if reply.status_code == 202:
                accepted.setdefault(body["user"], []).append(reply.json()["id"])
            elif reply.status_code != do.refused_status or not reply.json().get("detail"):
                refused_badly.append(f"{body['destination']['name']}: {reply.status_code} {reply.text[:200]}")
        counts = {f"burst-{u}": len(accepted.get(f"burst-{u}", [])) for u in range(do.users)}
        admission_ok = all(n == do.accepted_per_user for n in counts.values()) and not refused_badly
        self.result.checks.append(Check(
            "export_admission", admission_ok,
            f"accepted per user {counts} (expected {do.accepted_per_user} each); others answered "
            f"{do.refused_status} with a reason" + (f"; wrong refusals: {refused_badly[:3]}" if refused_badly else "")))
        unfinished, broken = [], []
        exported = self.ledger.copy()
        exported.mark_indeterminate_from(submitted_at)
        for job_id in (j for ids in accepted.values() for j in ids):
            job = wait_for(partial(self._finished_job, job_id), timeout=120, what=f"export job {job_id}")
            if job["state"] != "completed":
                unfinished.append(f"{job_id}: {job['state']} {job.get('error')}")
                continue
            outcome = reconcile(exported, read_lines(Path(job["path"])), [])
            if outcome.violations():
                broken.append(f"{job_id}: {', '.join(outcome.violations())}")
        total = sum(counts.values())
        self.result.checks.append(Check(
            "exports_complete", not unfinished and not broken,
            f"{total} accepted job(s): " + ("all completed with every row intact" if not unfinished and not broken
                                           else f"unfinished {unfinished[:3]}; incomplete {broken[:3]}")))
        return {"accepted": counts, "refused": len(bodies) - total}

    def _checkpoint(self, do: Checkpoint) -> dict[str, Any]:
        """Mid-run reconciliation of everything written so far (later writes are left out)."""
        exporter = self._exporter()
        assert self.tap is not None
        # The timeline is paused while this runs, so the ledger holds exactly what was written so far.
        ok_ids = self.ledger.ids("ok")
        state: dict[str, Any] = {}

        def settled() -> bool:
            state["sink"], state["letters"], ids = self._settled(exporter)
            return ok_ids <= ids

        t0 = time.monotonic()
        try:
            wait_for(settled, timeout=do.within_s, interval=0.5, what="checkpoint: records written so far to settle")
            in_time = True
        except WaitTimeout:
            in_time = False  # what is still missing is reported below; the end judges loss
        evidence = self.tap.evidence()
        job_stage = exporter.sink("export_dead_letter_stage")
        outcome = reconcile(self.ledger, state["sink"], [x for x in state["letters"] if x.stage != job_stage],
                            evidence)
        missing = outcome.classes.get(LOST, [])
        in_flight = [i for i in missing if i in evidence.present or i in evidence.pending]  # still in the buffer
        point = {"at": self._now(), "written": len(ok_ids), "settled_in_time": in_time,
                 "settle_s": round(time.monotonic() - t0, 3),
                 "missing": len(missing), "missing_ids": sorted(missing)[:20],
                 "missing_hops": sorted({outcome.lost_hops[i] for i in missing}),
                 "in_flight": len(in_flight),
                 "corrupted": outcome.count(DELIVERED_CORRUPTED),
                 # Rows Locust is writing reach the ledger when its step ends: until then they are
                 # not "unexpected", they are not known yet (the end judges them).
                 "unexpected": 0 if self._loads else len(outcome.unexpected),
                 "load_running": bool(self._loads)}
        self.result.checkpoints.append(point)
        return point

    def _finish_load(self, load: LoadRun, record: StepRecord) -> None:
        if load.started + load.duration_s - time.monotonic() > 1.0:
            load.stop()  # removed before its window ends (Ctrl-C, an error): stop it now, not later
        summary = load.finish()
        journal = load.journal(self.writer.resolve)
        for written in journal:
            self.ledger.add(written.record_id, written.digest, written.outcome)
        summary["writes"] = len(journal)
        summary["resolved_from_source"] = load.resolved
        self.result.load.append(summary)
        record.result = summary

    # -- disk faults -------------------------------------------------------------------------------
    def _directory(self, name: str) -> Path:
        exporter = self._exporter()
        path = Path(exporter.sink("export_dir")) if name == "export_dir" else Path(exporter.sink("file_sink")).parent
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _mount_small_disks(self) -> None:
        """Before the exporter starts: every directory a DiskFull step targets goes on its tmpfs."""
        for step in self.scenario.steps:
            do = step.do
            if isinstance(do, DiskFull):
                path = self._directory(do.directory)
                if path not in self._mounted:
                    _run(["mount", "-t", "tmpfs", "-o", f"size={do.size_kib}k", "tmpfs", str(path)],
                         f"mount a {do.size_kib} KiB tmpfs on {path} (needs root)")
                    self._mounted.append(path)

    def _fill_disk(self, do: DiskFull) -> str:
        path = self._directory(do.directory)
        _run(["mount", "-o", f"remount,size={do.size_kib}k", str(path)], f"size the tmpfs on {path}")
        usage = shutil.disk_usage(path)
        evidence = f"tmpfs of {do.size_kib} KiB on {path}, {usage.used} bytes used"
        want = int(do.fill * usage.total) - usage.used
        if want > 0:
            filler = path / ".faultline-filler"
            with filler.open("wb") as out:
                try:
                    out.write(b"\0" * want)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
            evidence += f"; filler of {filler.stat().st_size} bytes; {shutil.disk_usage(path).free} bytes free"
        return evidence

    def _free_disk(self, do: DiskFull) -> None:
        path = self._directory(do.directory)
        (path / ".faultline-filler").unlink(missing_ok=True)
        _run(["mount", "-o", "remount,size=64m", str(path)], f"grow the tmpfs on {path}")

    def _set_immutable(self, path: Path, on: bool) -> str:
        # -R: the files already there refuse appends too, not only new files in the directory.
        _run(["chattr", "-R", "+i" if on else "-i", str(path)],
             f"{'set' if on else 'clear'} the immutable flag on {path}")
        if on:
            self._immutable.append(path)
        elif path in self._immutable:
            self._immutable.remove(path)
        return f"{path} immutable={on}"

    def _unmount_all(self) -> None:
        for path in list(self._immutable):
            self._set_immutable(path, False)
        while self._mounted:
            path = self._mounted.pop()
            _run(["umount", "-l", str(path)], f"unmount {path}")

    # -- heal, drain, judge ------------------------------------------------------------------------
    def _heal(self) -> float:
        exporter = self._exporter()
        died = not exporter.running()
        exit_code = exporter.exit_code()
        self.stack.reset()  # every toxic gone, every link up, every server running
        expected_starts = 1 + self._planned_kills
        alive = not died and exporter.starts == expected_starts
        self.result.checks.append(Check(
            "process_alive", alive or not self.scenario.expect.process_alive,
            f"exporter started {exporter.starts} time(s) for {self._planned_kills} planned kill(s); "
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
        exporter = self._exporter()
        expect = self.scenario.expect
        ok_ids = self.ledger.ids("ok")
        seen: dict[str, Any] = {"sink": [], "letters": []}
        quiet = {"since": time.monotonic(), "count": -1}

        def accounted() -> bool:
            sink, letters, ids = self._settled(exporter)
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

    def _settled(self, exporter: ExporterProcess) -> tuple[list[SinkRecord], list[DeadLetterRecord], set[int]]:
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
        restarted = exporter.starts > 1 or self._planned_kills > 0 or self._revived
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
        exporter = self._exporter()
        samples = exporter.metrics(timeout=1.0)
        errors = sum(exporter.metric_total(k, samples) for k in ("send_failures", "retries")
                     if k in self.target.metrics)
        return exporter.metric_total("delivered", samples), errors

    # -- cleanup ---------------------------------------------------------------------------------
    def _exporter(self) -> ExporterProcess:
        if self.exporter is None:
            raise HarnessError(f"scenario {self.scenario.name}: exporter not started")
        return self.exporter

    def _cleanup(self) -> None:
        problems = []
        if self.sampler is not None:
            self.sampler.stop()
        if self.monitor is not None:
            self.monitor.stop()
        for step, _record in list(self._active):
            try:
                self._remove(step)
            except (HarnessError, OSError) as exc:
                problems.append(f"removing {step.describe()}: {exc}")
        self._meter.shutdown(wait=True, cancel_futures=True)
        for held in self._held.values():
            held.rollback()  # a held transaction whose step never got removed: never left open
        self._held.clear()
        self._unmount_all()
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


def _run(command: list[str], what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"cannot {what}: {proc.stderr.strip() or proc.returncode}")
