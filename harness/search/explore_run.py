"""The explore loop on one stack: draw, run, judge, note the signature, grow the corpus; on a
failure write the incident file, shrink it and say how to replay it (see ``harness.search.explore``)."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.catalogue import incident
from harness.catalogue.scenario import Scenario
from harness.infra.stack import Stack
from harness.infra.versions import server_versions
from harness.infra.waiting import Deadline
from harness.model.target import TargetDefinition
from harness.play.gate import reproduction_record
from harness.play.parallel import StackPool, stamped
from harness.play.runner import ScenarioRunner
from harness.report.rates import FailureShape
from harness.report.result import ExploreFailure, ExploreSummary, ScenarioResult, Verdict
from harness.search.amplify import BUDGET_RUNS
from harness.search.explore import (
    Coverage,
    Drawn,
    ExplorePlan,
    drawable,
    failure_group,
    for_target,
    judged,
    schedules,
    signature,
    summary,
)
from harness.search.explore_pool import InFlight, Played, executor_for, guidance_lag
from harness.search.handover import REPLAYS, Measuring, hand_over
from harness.search.shrink import ShrinkError, shrink

OVERRUN_GRACE_S = 60.0  # past explore's budget, a run still has this long to finish before it is stopped
RUN_BASE_S = 180.0  # a run's bound on top of its schedule: start, steady state, drain, judge


def run_limit(scenario: Scenario) -> float:
    """How long one run may take before it is stopped: far above what a healthy run needs."""
    return RUN_BASE_S + 3 * (scenario.during_s + scenario.fault_seconds)


SHRINK_CONFIRM_RUNS = 2  # each reduction kept when it fails 2 of 2 runs (explore's budget is for exploring)
SHRINK_REPLAYS = 3


def against(plan: ExplorePlan, stack: Stack, target: TargetDefinition) -> ExplorePlan:
    """The plan for this stack and target: kinds neither can perform are never drawn, and knobs
    are only those the target maps."""
    return dataclasses.replace(for_target(plan, target), lacks=lambda step: (
        stack.backend.unsupported(step) or target.unsupported(step) or target.idle_for(step)))


@dataclass
class Progress:
    run: int
    failures: int
    distinct: int
    left_s: float | None
    result: ScenarioResult
    mutated: bool


@dataclass
class Tally:
    """What exploring has counted and learnt so far."""

    coverage: Coverage = field(default_factory=Coverage)
    corpus: list[Scenario] = field(default_factory=list)
    drawn: Drawn = field(default_factory=Drawn)
    failures: list[ExploreFailure] = field(default_factory=list)
    groups: dict[tuple[frozenset[str], frozenset[str]], int] = field(default_factory=dict)
    errors: int = 0
    mutated: int = 0
    runs: int = 0

    def guide(self, scenario: Scenario, result: ScenarioResult, new_reaction: bool) -> None:
        """What a judged run teaches the draws (applied when the guidance lag reaches it)."""
        if result.verdict is not Verdict.ERROR:
            self.drawn.unreached(scenario, result.steps)
        if new_reaction:
            self.corpus.append(scenario)  # a new reaction: worth mutating


@dataclass
class Explorer:
    stack: Stack
    target: TargetDefinition
    plan: ExplorePlan
    out: Path
    extra_env: dict[str, str] | None = None
    interrupt: threading.Event = field(default_factory=threading.Event)
    on_run: Callable[[Progress], None] = lambda _p: None
    log: Callable[[str], None] = lambda _m: None
    shrink_failures: bool = True
    replays: int = REPLAYS  # of each new failure before it is written up; 0: not measured
    amplify_runs: int = BUDGET_RUNS  # spent amplifying one that fails fewer than 9 of 10; 0: never
    # Whether a failure is what is being looked for: None when it is, else why not (mutants
    # --explore: a failure the clean exporter shows too is not the seeded defect's). A failure
    # it refuses is noted and exploring goes on.
    attribute: Callable[[Scenario, ScenarioResult], str | None] = lambda _s, _r: None
    results: list[ScenarioResult] = field(default_factory=list)
    not_attributed: list[str] = field(default_factory=list)
    _started: float | None = None  # when explore() began: a budget counts from here
    pool: StackPool | None = None  # stacks to play runs on side by side (-j); None: ``stack`` alone

    def run_once(self, scenario: Scenario, work: Path, stack: Stack | None = None) -> ScenarioResult:
        """One run, stopped when it overruns: its own bound, and the budget (plus a grace to heal
        and report) when exploring by time. An overrun is healed, reported and counted as a
        harness error: a budget is a promise (explore once sat ten minutes past its own on a
        run whose lock waited on a later step)."""
        limit = run_limit(scenario)
        if self.plan.budget_s is not None and self._started is not None:
            left = self.plan.budget_s - (time.monotonic() - self._started)
            limit = min(limit, max(0.0, left) + OVERRUN_GRACE_S)
        with Deadline(self.interrupt, limit) as deadline:
            result = ScenarioRunner(stack or self.stack, self.target, scenario, work, extra_env=self.extra_env,
                                    interrupt=deadline.event).run()
        if deadline.overran:
            result.verdict = Verdict.ERROR
            result.error = (f"run overran its bound of {limit:.0f}s (its schedule's length plus drain, or explore's "
                            f"budget plus {OVERRUN_GRACE_S:.0f}s): stopped, healed and reported"
                            + (f"; {result.error}" if result.error else ""))
        return result

    def explore(self) -> ExploreSummary:
        """Draw, play (on the pool's stacks, side by side when it has several: see
        ``harness.search.explore_pool``), judge in run order, until the runs or the budget are
        spent, Ctrl-C, or a failure when not ``keep_going``."""
        plan = self.plan.validate()
        kinds, never = drawable(plan, plan.world)
        tally, started = Tally(), time.monotonic()
        self._started = started
        pool = self.pool or StackPool([self.stack])
        flight = InFlight(pool.size, guidance_lag(pool.size))
        draws = schedules(plan, kinds, tally.corpus, tally.drawn)
        next_run = 1
        with executor_for(pool.size) as executor:
            while not self._judge_ripe(flight, tally, pool) and not self._done(next_run, started):
                if flight.blocking(next_run) or flight.busy:
                    flight.wait_one()
                    continue
                flight.teach(next_run)
                run, scenario, mutated = next(draws)
                next_run = run + 1
                if not plan.plays(run):
                    continue  # another shard's: drawn all the same, so that what follows is drawn alike
                tally.runs, tally.mutated = tally.runs + 1, tally.mutated + mutated
                self._write_schedule(run, scenario, mutated)
                flight.queue.append(Played(run, scenario, mutated, executor.submit(self._play, pool, scenario)))
            while flight.queue:  # the runs beside the last one: ended and judged like any other
                flight.wait_one()
                self._judge_ripe(flight, tally, pool)
        found = summary(plan, tally.runs, tally.coverage, never, tally.failures, tally.errors, tally.mutated,
                        time.monotonic() - started)
        return dataclasses.replace(found, not_attributed=list(self.not_attributed),
                                   guidance_lag=flight.lag)

    def _write_schedule(self, run: int, scenario: Scenario, mutated: bool) -> None:
        """Every run's schedule as an incident file: any run, not only a failing one, can be replayed."""
        (self.out / "schedules").mkdir(parents=True, exist_ok=True)
        incident.write(scenario, self.out / "schedules" / f"{scenario.name}.toml",
                       comment=f"faultline explore --seed {self.plan.seed}: run {run}"
                       + (" (mutated)" if mutated else ""))

    def _play(self, pool: StackPool, scenario: Scenario) -> ScenarioResult:
        with pool.lease() as (number, stack):
            began = time.monotonic()
            return stamped(self.run_once(scenario, self.out / "runs", stack), number, self._started or began, began)

    def _judge_ripe(self, flight: InFlight, tally: Tally, pool: StackPool) -> bool:
        """Judge the runs that ended (each after every run before it); True once exploring must
        stop for a failure."""
        for played in flight.ripe():
            self._judge(played, flight, tally, pool)
        return bool(tally.failures) and not self.plan.keep_going

    def _judge(self, played: Played, flight: InFlight, tally: Tally, pool: StackPool) -> None:
        plan, run, scenario, result = self.plan, played.run, played.scenario, played.future.result()
        self.results.append(result)
        sig = signature(result) if judged(result) else None
        new = tally.coverage.note(run, scenario, sig, scenario.during_s) and result.verdict is Verdict.PASS
        if not plan.open_loop:
            flight.guidance.append((run, lambda: tally.guide(scenario, result, new)))
        tally.errors += result.verdict is Verdict.ERROR
        if result.verdict is Verdict.FAIL:  # an interrupted run is judged on what must never happen
            ending = bool(tally.failures) and not plan.keep_going  # a run beside the one that ended it
            with self._holding(pool):
                refused = None if ending else self.attribute(scenario, result)
                if refused is None:
                    tally.failures.append(self._failure(run, scenario, result, tally.groups, measure=not ending))
                else:
                    self.not_attributed.append(f"run {run}: {refused}")
                    self.log(f"run {run} failed, but not as what is looked for: {refused}")
        left = None if plan.budget_s is None else max(0.0, plan.budget_s - (time.monotonic() - (self._started or 0)))
        self.on_run(Progress(run, len(tally.failures), len(tally.coverage.signatures), left, result, played.mutated))

    @contextlib.contextmanager
    def _holding(self, pool: StackPool) -> Iterator[None]:
        """A stack for the judge's own runs (replays, amplifying, shrinking, attribution): the
        first free one, while the other stacks finish the runs they play."""
        mine = self.stack
        with pool.lease() as (_number, stack):
            self.stack = stack
            try:
                yield
            finally:
                self.stack = mine

    def _done(self, run: int, started: float) -> bool:
        if self.interrupt.is_set():
            return True
        if self.plan.runs is not None:
            return run > self.plan.runs
        return time.monotonic() - started >= (self.plan.budget_s or 0)

    def _failure(self, run: int, scenario: Scenario, result: ScenarioResult,
                 groups: dict[tuple[frozenset[str], frozenset[str]], int], measure: bool = True) -> ExploreFailure:
        group = failure_group(result, scenario)
        directory = self.out / "incidents"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{scenario.name}.toml"
        violated = sorted(group[0])
        # Failed once, not yet replayed (1/1), with the checks it violated: what --amplify reads.
        defect = (self.extra_env or {}).get(self.target.defect_env)
        once = reproduction_record(result, self.target, server_versions(self.stack), scenario.workload.seed,
                                   defect=defect)
        incident.write(dataclasses.replace(scenario, reproduction=once), path, comment=(
            f"Found by faultline explore (seed {self.plan.seed}, run {run}): violated {', '.join(violated)}.\n"
            + "\n".join(f"{c.name}: {c.detail[:300]}" for c in result.violations)))
        found = ExploreFailure(run, scenario.name, violated, sorted(group[1]), str(path),
                               replay=f"faultline reproduce {path} --repeat 5", same_as=groups.get(group))
        groups.setdefault(group, run)
        if found.same_as is not None or self.interrupt.is_set() or not measure:
            return found
        handed = hand_over(scenario, FailureShape.of(result), path, self._measuring())
        best, best_rate = handed.best
        found = dataclasses.replace(
            found, rate=str(handed.rate) if handed.rate.runs else "", rate_said=handed.said(),
            amplified=str(handed.amplified_path) if handed.amplified_path else None,
            amplified_rate=str(best_rate) if best is not None else "",
            amplified_changes=list(handed.amplified.changes) if handed.amplified else [])
        if best is not None and handed.amplified_path is not None:
            found = dataclasses.replace(found, replay=f"faultline reproduce {handed.amplified_path} --repeat 10")
            scenario, path = best, handed.amplified_path
        if self.shrink_failures and not self.interrupt.is_set():
            found = self._shrunk(found, scenario, path)
        return found

    def _measuring(self) -> Measuring:
        work = self.out / "replays"
        defect = (self.extra_env or {}).get(self.target.defect_env)
        return Measuring(lambda candidate: self.run_once(candidate, work), self.target, server_versions(self.stack),
                         defect, self.replays, self.amplify_runs, self.log)

    def _shrunk(self, found: ExploreFailure, scenario: Scenario, path: Path) -> ExploreFailure:
        self.log(f"run {found.run} failed ({', '.join(found.violated)}): shrinking it")
        work = self.out / "shrink"
        try:
            minimal = shrink(scenario, lambda candidate: self.run_once(candidate, work), log=self.log,
                             confirm_runs=SHRINK_CONFIRM_RUNS, replays=SHRINK_REPLAYS)
        except ShrinkError as exc:  # it did not fail again: a rare race, kept as found, said so
            self.log(f"run {found.run} not shrunk: {exc}")
            return dataclasses.replace(found, replay=found.replay + "  (did not fail again when replayed: flaky)")
        destination = path.with_suffix(".min.toml")
        incident.write(minimal.scenario, destination, comment=(
            f"Shrunk from {path.name} in {minimal.trials} runs: violates {', '.join(sorted(minimal.stable))}; "
            f"the minimum failed {minimal.replay_failed}/{minimal.replays} replays"))
        return dataclasses.replace(found, minimal=str(destination),
                                   replay=f"faultline reproduce {destination} --repeat 5")
