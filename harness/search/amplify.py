"""Rates and amplification: how often a finding fails *the same way*, and a variant of it that
fails more often.

A failure found once may be a race the replay does not win again: a finding that does not
replay cannot be watched, bisected or proven fixed. So every failure explore, soak or the gate
reports is replayed first and its rate measured (``measure``); when the rate is below the goal
(9 of 10), ``amplify`` searches the schedule's neighbourhood for a variant that fails more often
the same way, the way a person chasing a flaky bug would: the fault repeated (a flap), made
harsher (every request, from the first, with certainty), its window widened or moved, more
writes meeting it, the knobs that decide the race sharpened, the actions moved into it.

The search is a first-improvement hill climb in a fixed order (deterministic for a deterministic
exporter): a neighbour is kept only when it fails more often than its parent, measured on the
same number of runs, and a neighbour that can no longer beat its parent is given up at once (most
are after a few runs). "The same way" is a ``FailureShape``: the checks the finding violated, and
the hops where its records were lost; a harness error, a skip or a failure of other checks never
counts, so a clean exporter cannot be amplified into a false failure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from harness.catalogue.scenario import Scenario, ScenarioError, Step, has_window, is_fault
from harness.report.rates import GOAL, RUNS, FailureShape, Rate
from harness.report.result import ScenarioResult
from harness.steps import StepKind

SCREEN_RUNS = 5  # a neighbour no better than its parent over these is dropped
BUDGET_RUNS = 60
REPEAT_GAP_S = 0.3  # between a fault's window and its repeat: a flap, not one longer window
TAIL_S = 2.0  # left after the last window when a lever lengthens the timeline
# The knobs that decide most races, and the values that make them come sooner: a short delivery
# timeout and source timeout (errors reach the exporter instead of its patience), fast polls (more
# passes land inside a window).
SHARP_KNOBS = {"delivery_timeout_ms": "1500", "source_timeout_s": "1", "poll_interval_s": "0.05",
               "metadata_poll_interval_s": "0.5"}


Run = Callable[[Scenario], ScenarioResult]


def measure(scenario: Scenario, run: Run, shape: FailureShape, runs: int,
            log: Callable[[str], None] = lambda _m: None, what: str = "replay") -> Rate:
    """Run ``scenario`` ``runs`` times; how many failed the way ``shape`` says."""
    failed = 0
    for n in range(runs):
        same = shape.matches(run(scenario))
        failed += same
        log(f"{what} {n + 1}/{runs}: {'fails the same way' if same else 'does not fail the same way'}")
    return Rate(failed, runs)


def _trial(candidate: Scenario, run: Run, shape: FailureShape, parent: Rate, runs: int,
           log: Callable[[str], None], what: str) -> tuple[Rate | None, int]:
    """(its rate over ``runs`` if it beat ``parent``, else None; runs spent). Given up as soon
    as it cannot beat the parent, and after SCREEN_RUNS when it is no better so far."""
    failed = 0
    for n in range(1, runs + 1):
        same = shape.matches(run(candidate))
        failed += same
        log(f"{what}: run {n}: {'fails the same way' if same else 'does not'}")
        best_possible = failed + runs - n
        if best_possible * parent.runs <= parent.failed * runs or (
                n == SCREEN_RUNS < runs and failed * parent.runs <= parent.failed * n):
            log(f"{what}: {failed}/{n}, no better than {parent}: dropped")
            return None, n
    log(f"{what}: {failed}/{runs} (parent {parent})")
    return (Rate(failed, runs), runs) if failed * parent.runs > parent.failed * runs else (None, runs)


@dataclass(frozen=True)
class Amplified:
    scenario: Scenario  # the variant that failed most often (the original when none did better)
    rate: Rate
    original_rate: Rate
    changes: tuple[str, ...]  # what was changed, in order, to get from the original to it
    runs: int  # replays spent searching
    goal: int = GOAL
    of: int = RUNS
    reached: bool = False  # a fresh measurement of it failed at least goal of ``of``


def amplify(scenario: Scenario, run: Run, shape: FailureShape, original_rate: Rate, *,
            knobs: frozenset[str] | None = None, goal: int = GOAL, runs: int = RUNS,
            budget_runs: int = BUDGET_RUNS, log: Callable[[str], None] = lambda _m: None) -> Amplified:
    """A variant of ``scenario`` that fails the way ``shape`` says at least ``goal`` of ``runs``
    times, or the most reliable one found within ``budget_runs`` replays (see the module).
    ``knobs``: the knobs the target maps (None: all)."""
    search = _Search(run, shape, goal, runs, budget_runs, log)
    best, rate = scenario, original_rate
    done = rate.reaches(goal, runs)  # replays of the finding itself are fresh: no luck chose them
    remeasured = False  # the parent's rate pooled with more runs since it was last beaten
    while not done and search.left() >= runs:  # a trial shorter than ``runs`` could never be kept
        step = search.better_neighbour(best, rate, knobs)
        if step is not None:
            best, rate, done = step
            remeasured = False
            continue
        if remeasured or search.left() < runs:
            log(f"no neighbour fails more often than {rate}: stopping there")
            break
        # A parent measured on few runs may have been lucky, and then nothing beats it: pool more
        # runs into its rate and try its neighbours once more against that.
        more = search.measure(best, "the parent again")
        rate, remeasured = Rate(rate.failed + more.failed, rate.runs + more.runs), True
        search.tried = [best]
        log(f"no neighbour did better; the parent re-measured: {rate}")
    return Amplified(best, rate, original_rate, tuple(search.changes), search.spent, goal, runs, done)


@dataclass
class _Search:
    run: Run
    shape: FailureShape
    goal: int
    runs: int
    budget_runs: int
    log: Callable[[str], None]
    spent: int = 0
    tried: list[Scenario] = dataclasses.field(default_factory=list)
    changes: list[str] = dataclasses.field(default_factory=list)

    def left(self) -> int:
        return self.budget_runs - self.spent

    def measure(self, scenario: Scenario, what: str) -> Rate:
        rate = measure(scenario, self.run, self.shape, self.runs, self.log, what=what)
        self.spent += rate.runs
        return rate

    def better_neighbour(self, parent: Scenario, rate: Rate,
                         knobs: frozenset[str] | None) -> tuple[Scenario, Rate, bool] | None:
        """The first untried neighbour that fails more often than ``rate``: (it, its rate, whether a
        fresh measurement confirmed it reaches the goal); None when none does within the budget."""
        self.tried = self.tried or [parent]
        for what, candidate in neighbours(parent, knobs, self.shape.hops):
            if candidate in self.tried:
                continue
            if self.left() < self.runs:
                return None  # too little budget left for a trial that could be kept
            self.tried.append(candidate)
            got, used = _trial(candidate, self.run, self.shape, rate, self.runs, self.log, what)
            self.spent += used
            if got is not None:
                confirmed = False
                if got.reaches(self.goal, self.runs) and self.left() >= self.runs:
                    # The best of many noisy trials is flattered by its luck (the winner's curse):
                    # a variant is handed over on a fresh measurement alone; short of the goal,
                    # the search goes on from it with both measurements pooled.
                    again = self.measure(candidate, f"{what}, confirming")
                    confirmed = again.reaches(self.goal, self.runs)
                    got = again if confirmed else Rate(got.failed + again.failed, got.runs + again.runs)
                self.changes.append(f"{what} ({got})")
                self.tried = [candidate]
                return candidate, got, confirmed
        return None


# -- the levers ------------------------------------------------------------------------------------
# The servers each hop of loss goes through: a fault on one of them is where a loss at that hop
# is decided; the exporter's own process (a kill, a clock) is on every hop.
HOP_SERVERS = {"source->buffer": frozenset({"postgres", "redis"}), "buffer->sink": frozenset({"redis", "kafka"}),
               "source->sink": frozenset({"postgres", "kafka"}), "still pending": frozenset({"redis", "kafka"})}


def on_the_hops(step: Step, hops: frozenset[str]) -> bool:
    """Whether a fault can decide a loss at these hops: it acts on a server they go through, or on
    no server (the exporter's process, its clock, its files). Without hops (another check), every
    fault can."""
    servers = frozenset().union(*(v for k, v in HOP_SERVERS.items() if any(h.startswith(k) for h in hops)))
    touched = frozenset(n.server for n in step.do.needs() if n.server is not None)
    return not hops or not servers or not touched or bool(touched & servers)


def neighbours(scenario: Scenario, knobs: frozenset[str] | None = None,
               hops: frozenset[str] = frozenset()) -> Iterator[tuple[str, Scenario]]:
    """Valid variants of ``scenario``, each one lever pulled once, strongest levers first, and the
    faults on the hops where records were lost before the others (repeating a Kafka outage does
    nothing for rows that never reached the buffer, and costs a broker restart a run)."""
    faults = [i for i, s in enumerate(scenario.steps) if is_fault(s)]
    relevant = [i for i in faults if on_the_hops(scenario.steps[i], hops)]
    candidates: list[tuple[str, Callable[[], Scenario]]] = []
    for i in relevant:
        candidates += _fault_levers(scenario, i, strong=True)
    candidates.append(("more writes meeting each fault", partial(_more_writes, scenario)))
    for knob, value in SHARP_KNOBS.items():
        if (knobs is None or knob in knobs) and scenario.knobs.get(knob) != value:
            candidates.append((f"knob {knob} = {value}", partial(_with_knob, scenario, knob, value)))
    for i in relevant:
        candidates += _fault_levers(scenario, i, strong=False)
    for i, step in enumerate(scenario.steps):
        if not has_window(step) and step.phase == "during":
            candidates.append((f"move {step.do.describe()} to the start of the fault it met",
                               partial(_action_to_fault, scenario, i)))
    for i in faults:  # off the hops: last, every lever at once
        if i not in relevant:
            candidates += _fault_levers(scenario, i, strong=True) + _fault_levers(scenario, i, strong=False)
    for what, make in candidates:
        candidate = _valid(make)
        if candidate is not None and candidate != scenario:
            yield what, candidate


def _fault_levers(scenario: Scenario, i: int, strong: bool) -> list[tuple[str, Callable[[], Scenario]]]:
    """A fault's levers: repeated and harsher (``strong``), or widened and moved."""
    name = scenario.steps[i].do.describe()
    levers: list[tuple[str, Callable[[], Scenario]]]
    if strong:
        levers = [(f"repeat {name} right after its window", partial(_repeated, scenario, i))]
        levers += [(f"make {name} harsher: {h.describe()}", partial(_with_kind, scenario, i, h))
                   for h in scenario.steps[i].do.harsher()]
        return levers
    levers = [(f"widen the window of {name} twice", partial(_widened, scenario, i))]
    levers += [(f"move {name} {delta:+}s", partial(_moved, scenario, i, delta)) for delta in (-0.5, 0.5)]
    return levers


def _valid(make: Callable[[], Scenario]) -> Scenario | None:
    try:
        return make().validate()
    except (ScenarioError, ValueError):
        return None  # a lever that would make no valid scenario here (a clash, a window past the end)


def _with(scenario: Scenario, index: int, step: Step) -> Scenario:
    steps = scenario.steps[:index] + (step,) + scenario.steps[index + 1:]
    end = max((s.at + (s.duration or 0.0) for s in steps if s.phase == "during"), default=0.0)
    return dataclasses.replace(scenario, steps=steps, during_s=max(scenario.during_s, round(end + TAIL_S, 3)))


def _with_kind(scenario: Scenario, index: int, do: StepKind) -> Scenario:
    return _with(scenario, index, dataclasses.replace(scenario.steps[index], do=do))


def _with_knob(scenario: Scenario, knob: str, value: str) -> Scenario:
    return dataclasses.replace(scenario, knobs={**scenario.knobs, knob: value})


def _repeated(scenario: Scenario, index: int) -> Scenario:
    step = scenario.steps[index]
    if step.duration is None:
        raise ValueError("a fault in force until the phase ends cannot come again")
    again = dataclasses.replace(step, at=round(step.at + step.duration + REPEAT_GAP_S, 3))
    with_again = _with(scenario, index, step)
    return _with(dataclasses.replace(with_again, steps=with_again.steps + (again,)), len(with_again.steps), again)


def _widened(scenario: Scenario, index: int) -> Scenario:
    step = scenario.steps[index]
    if step.duration is None:
        raise ValueError("an instant fault has no window to widen")
    return _with(scenario, index, dataclasses.replace(step, duration=round(step.duration * 2, 3)))


def _moved(scenario: Scenario, index: int, delta: float) -> Scenario:
    step = scenario.steps[index]
    if step.at + delta < 0:
        raise ValueError("before the phase starts")
    return _with(scenario, index, dataclasses.replace(step, at=round(step.at + delta, 3)))


def _more_writes(scenario: Scenario) -> Scenario:
    workload = scenario.workload
    meet = max(100, workload.meet_faults * 2)
    return dataclasses.replace(scenario, workload=dataclasses.replace(workload, meet_faults=meet))


def _action_to_fault(scenario: Scenario, index: int) -> Scenario:
    """The action moved to just after the start of the fault window it sat in (or the nearest one
    before it): an operator's action meets the trouble while it is fresh."""
    action = scenario.steps[index]
    starts = [s.at for s in scenario.steps if is_fault(s) and s.at <= action.at]
    if not starts:
        raise ValueError("no fault before the action")
    return _with(scenario, index, dataclasses.replace(action, at=round(max(starts) + 0.1, 3)))
