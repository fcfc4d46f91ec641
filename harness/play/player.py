"""The timeline player: steady state before, the timeline during (every step with the time it
was applied and removed and the evidence it took effect), the actions after. The plan is a pure
function of the scenario (``plan``), so its order can be tested without any server."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from confluent_kafka import KafkaException
from redis import exceptions as redis_errors

from harness.catalogue.scenario import Scenario, Step, has_window, is_fault
from harness.errors import HarnessError
from harness.infra.waiting import WaitTimeout, wait_for
from harness.judge.sink_readers import SinkProgress
from harness.play.bounded import BoundedCalls, StepInterrupted
from harness.play.run import Run
from harness.report.journal import StepRecord
from harness.rig.exporter_process import MetricsUnavailable


class Interrupted(HarnessError):
    """Ctrl-C during the timeline: faults are healed and the run is still judged and reported."""


@dataclass(frozen=True)
class Event:
    at: float  # seconds after the timeline starts
    kind: Literal["write", "change", "apply", "remove"]
    count: int = 0  # writes: how many records; changes: how many changes
    step: Step | None = None  # apply and remove: which step


# The servers the sink read of _measure_in_flight goes to: none is measured while one is down.
SINK_READS = frozenset({"kafka", "redis"})
AFTER_FAILOVER_S = 0.05  # the write after a failover: once its removal (the failover itself) returned
_ORDER = {"apply": 0, "write": 1, "change": 1, "remove": 2}  # at one instant: a fault first, then data meets it


def plan(scenario: Scenario, already_written: int) -> tuple[list[Event], float]:
    """The timeline's events in order and its length: the rest of the workload in chunks spread
    evenly over it, every step applied at its time (and removed when its window ends), and when
    the workload says so, a chunk just after each fault so that every fault meets data."""
    steps = sorted((s for s in scenario.steps if s.phase == "during"), key=lambda s: s.at)
    end = max([scenario.during_s] + [s.at + (s.duration or 0) for s in steps])
    remaining = scenario.workload.records - already_written
    chunk = scenario.workload.chunk
    chunks = -(-remaining // chunk) if remaining > 0 else 0
    events = [Event(end * i / chunks, "write", min(chunk, remaining - i * chunk)) for i in range(chunks)]
    events += _change_events(scenario, end)
    for step in steps:
        events.append(Event(step.at, "apply", step=step))
        if is_fault(step) and scenario.workload.meet_faults:
            events.append(Event(step.at, "write", scenario.workload.meet_faults))
            events += _writes_through(step, scenario.workload.meet_faults)
            if step.do.fails_over and step.duration is not None:
                # And one just after a failover: what it left (a checkpoint gone back, a new leader)
                # shows in what is written next (found needed: explore's failovers near the end of
                # the phase met no write after them, and a reader stuck on the new primary passed).
                events.append(Event(step.at + step.duration + AFTER_FAILOVER_S, "write", scenario.workload.meet_faults))
        if step.duration is not None:
            events.append(Event(step.at + step.duration, "remove", step=step))
    events.sort(key=lambda e: (e.at, _ORDER[e.kind]))  # stable: equal keys keep their order
    return events, end


def _writes_through(step: Step, count: int) -> list[Event]:
    """Writes through a window whose kind meets writes every so often (an ISR shrinks only
    while the leader takes writes its followers lack), after the one at its start."""
    every = step.do.meets_writes_every_s
    if not every or step.duration is None:
        return []
    return [Event(round(step.at + k * every, 3), "write", count) for k in range(1, math.ceil(step.duration / every))]


def _change_events(scenario: Scenario, end: float) -> list[Event]:
    """The change workload's share for the during phase, in chunks spread evenly over it (the
    before phase wrote its ``before_fraction``), and a chunk after each fault when records meet
    faults too."""
    mix = scenario.workload.changes
    if mix is None:
        return []
    remaining = mix.count - int(mix.count * scenario.workload.before_fraction)
    chunks = -(-remaining // mix.chunk) if remaining > 0 else 0
    events = [Event(end * i / chunks, "change", min(mix.chunk, remaining - i * mix.chunk)) for i in range(chunks)]
    if scenario.workload.meet_faults:
        events += [Event(s.at, "change", mix.chunk) for s in scenario.steps if s.phase == "during" and is_fault(s)]
    return events


def _next_steps(events: list[Event]) -> list[float | None]:
    """For each event, when the next step after it is due (writes are not steps); one pass from
    the end: a week's soak has a hundred thousand events."""
    due: list[float | None] = [None] * len(events)
    upcoming: float | None = None
    for n in range(len(events) - 1, -1, -1):
        due[n] = upcoming
        if events[n].kind not in ("write", "change"):
            upcoming = events[n].at if upcoming is None else min(upcoming, events[n].at)
    return due


class Player:
    def __init__(self, run: Run, on_step: Callable[[str, StepRecord], None] | None = None) -> None:
        self.run = run
        self.on_step = on_step or (lambda _event, _record: None)
        self.active: list[tuple[Step, StepRecord, Any]] = []  # windowed steps applied: (step, record, handle)
        self._meter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="in-flight")
        self._meters: list[Future[None]] = []
        # Actions that wait on the exporter (an export job, a pause's grace) run here, in order,
        # beside the timeline: inline, one would hold every fault's window open while it waits.
        self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waiting-actions")
        self._waiting: list[tuple[Step, Future[None]]] = []
        self._ok_at_apply: dict[int, int] = {}  # per windowed fault step: acknowledged writes when applied
        self._progress: SinkProgress | None = None
        self.calls = BoundedCalls(run.interrupt)  # every step's apply and remove under its deadline

    # -- phases ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Before the exporter starts: what a step kind sets up for the whole run (a small disk)."""
        for step in self.run.scenario.steps:
            step.do.prepare(self.run)

    def before(self) -> None:
        """Steady state before any fault: healthy, and the first part of the workload flowing through."""
        run = self.run
        exporter = run.live_exporter()
        healthy = exporter.healthy()
        run.write(int(run.scenario.workload.records * run.scenario.workload.before_fraction))
        run.write_changes(run.change_count(run.scenario.workload.before_fraction))
        acknowledged = run.ledger.ids("ok")
        expected = len(acknowledged)
        progress = SinkProgress(run.sink_reader(exporter))

        def flowed() -> bool:
            if not run.target.has_metrics:  # no counters to ask: see the records in the sink
                try:
                    return acknowledged <= progress.update()  # by id: change events name other rows
                except (HarnessError, KafkaException, redis_errors.RedisError, OSError):
                    return False
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
        state = run.result.steady_state  # steady_state_before judges it
        state.healthy_before, state.flowing_before, state.records_before = healthy, flowing, expected
        self.phase("before")

    def during(self) -> None:
        events, end = plan(self.run.scenario, self.run.written)
        start = time.monotonic()
        due = _next_steps(events)
        try:
            for n, event in enumerate(events):
                self._wait_until(start + event.at)
                upcoming = due[n]
                self.run.next_event_due = None if upcoming is None else start + upcoming
                if event.kind == "write":
                    self.run.write(event.count)
                elif event.kind == "change":
                    self.run.write_changes(event.count)
                elif event.step is not None and event.kind == "apply" and self._runs_beside(event.step):
                    self._waiting.append((event.step, self._beside.submit(self.apply, event.step)))
                elif event.step is not None and event.kind == "apply":
                    self.apply(event.step)
                elif event.step is not None:
                    self.remove(event.step)
            self.run.next_event_due = None
            self._wait_until(start + end)
        except Interrupted:
            # Ctrl-C: stop the timeline here, but heal, drain, reconcile and report as usual.
            self.run.result.interrupted = True
            self.on_step("interrupted", StepRecord("during", "interrupted (Ctrl-C)", applied_at=self.run.now()))
        self.run.result.steady_state.running_during = self.run.live_exporter().running()
        self.remove_all()
        self._finish_waiting()

    @staticmethod
    def _runs_beside(step: Step) -> bool:
        return step.do.waits and not has_window(step)

    def _finish_waiting(self) -> None:
        """Each waiting action has finished (bounded by its own timeouts); its error is the run's."""
        bound = 120 + self.run.scenario.fault_seconds
        for step, waiting in self._waiting:
            try:
                waiting.result(timeout=bound)
            except TimeoutError as exc:
                raise HarnessError(f"scenario {self.run.scenario.name}: {step.describe()} still running "
                                   f"{bound:.0f}s after the timeline ended") from exc
        self._waiting.clear()

    def phase(self, phase: str) -> None:
        """Actions of the before or after phase, in order (faults live in 'during' only)."""
        for step in sorted((s for s in self.run.scenario.steps if s.phase == phase), key=lambda s: s.at):
            self.apply(step)

    def _wait_until(self, deadline: float) -> None:
        # The timeline's own clock (fault windows are part of the scenario), interruptible by Ctrl-C.
        remaining = deadline - time.monotonic()
        if remaining > 0 and self.run.interrupt.wait(remaining):
            raise Interrupted(f"scenario {self.run.scenario.name}: interrupted")

    # -- steps -------------------------------------------------------------------------------------
    def apply(self, step: Step) -> None:
        run = self.run
        record = StepRecord(step.phase, step.describe(), applied_at=run.now(),
                            window_s=(step.duration or run.scenario.during_s) if has_window(step) else None)
        record.fails_over = step.do.fails_over
        if is_fault(step):
            record.fault = True
            self._measure_in_flight(record)
            self._ok_at_apply[id(step)] = run.ok_writes
        run.result.steps.append(record)
        what = f"scenario {run.scenario.name}: {step.describe()} (apply)"
        late = (lambda h: step.do.remove(run, h, record)) if has_window(step) else (lambda _h: None)
        try:
            handle = self.calls.call(what, lambda: step.do.apply(run, record), step.do.deadline(run), late)
        except StepInterrupted as exc:
            raise Interrupted(str(exc)) from exc
        if has_window(step):  # applied now, removed when its window ends
            self.active.append((step, record, handle))
        else:
            record.removed_at = record.applied_at
        self.on_step("applied", record)

    def remove(self, step: Step) -> None:
        match = [entry for entry in self.active if entry[0] is step]
        if not match:
            return
        self.active.remove(match[0])
        _step, record, handle = match[0]
        what = f"scenario {self.run.scenario.name}: {step.describe()} (remove)"
        # Not interruptible: a removal is healing, and healing goes on under Ctrl-C (bounded all the same).
        self.calls.call(what, lambda: step.do.remove(self.run, handle, record), step.do.deadline(self.run),
                        interruptible=False)
        record.removed_at = self.run.now()
        if id(step) in self._ok_at_apply:
            record.written_during = self.run.ok_writes - self._ok_at_apply.pop(id(step))
        self.on_step("removed", record)

    def remove_all(self) -> list[str]:
        """Remove every step still applied; returns what could not be removed (cleanup reports it)."""
        problems = []
        for step, _record, _handle in list(self.active):
            try:
                self.remove(step)
            except (HarnessError, OSError) as exc:
                problems.append(f"removing {step.describe()}: {exc}")
        return problems

    # -- what each fault met -----------------------------------------------------------------------
    def _measure_in_flight(self, record: StepRecord) -> None:
        """Set ``record.in_flight_at_apply``: acknowledged writes (as of now, the apply time) not yet
        in the sink nor dead-lettered. The sink is read on a background thread so that the
        timeline is not delayed; nothing is set while a server it reads is down by design."""
        needs = [need for s, _r, _h in self.active for need in s.do.needs()]
        if any(need.takes_server_away and need.name in SINK_READS for need in needs):
            return
        run = self.run
        written = run.ledger.ids("ok")
        exporter = run.live_exporter()
        if self._progress is None:
            self._progress = SinkProgress(run.sink_reader(exporter))
        progress = self._progress

        def measure() -> None:
            try:
                reached = set(progress.update())
                letters = run.dead_letters(exporter)
            except (HarnessError, OSError, redis_errors.RedisError, KafkaException):
                return  # unreadable now: the figure stays unknown (None), never guessed
            reached |= {int(x.record_id) for x in letters if x.record_id.isdigit()}
            record.in_flight_at_apply = len(written - reached)

        self._meters.append(self._meter.submit(measure))

    def measured(self, timeout: float = 60) -> None:
        """Every fault's in-flight figure is in the journal (called before judging)."""
        for meter in self._meters:
            meter.result(timeout=timeout)

    def close(self) -> None:
        self._meter.shutdown(wait=True, cancel_futures=True)
        self._beside.shutdown(wait=True, cancel_futures=True)
        self.calls.close()
