"""``faultline shrink FILE``: deterministic minimisation of a failing schedule, to a file that
fails every time it is replayed.

In a fixed order (hypothesis-style, so the same input always shrinks the same way):

1. drop every instant action at once (checkpoints and the like) and close the gaps: every
   window moved as early as it can go, the timeline cut after the last (a soak's quiet
   periods make each later trial shorter); failing that, each of the two alone, then
3. drop fault and load steps, in halves, then quarters, ... then one at a time (ddmin), then
   close the gaps again, then
4. merge two windows of the same fault into one that spans both, then
5. halve each window, then lower each load (halve its users), then cut the workload to its
   minimum or, failing that, halve it (in smaller chunks, so writes still meet the faults).

A failure that shows once may be luck near a timing threshold, and a minimal file that passes
on replay tells its reader the bug is gone. So:

- the original is run ``confirm_runs`` times first: it must fail every time, and the checks it
  violated every time are *the* failure (``stable``);
- a candidate is kept only when it fails ``confirm_runs`` times out of ``confirm_runs`` with
  every one of those checks (it is dropped at its first run that does not);
- and only while every fault that met data in the original still meets data: a fault applied
  when nothing written is in flight, and during which nothing is written, cannot lose anything,
  so a smaller workload or load that starves a fault window fails by luck, if at all (the
  journal's ``in_flight_at_apply`` and ``written_during``);
- at the end the minimal candidate is replayed ``replays`` times; if any replay does not fail
  the same way, shrink falls back to the next larger kept candidate (each kept one failed every
  time), replaying each in turn, and reports the rate it measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from harness.catalogue.scenario import Scenario, Step, Workload, has_window
from harness.errors import HarnessError
from harness.model.changes import ChangeMix
from harness.report.result import ScenarioResult, Verdict

MIN_RECORDS = 50
MIN_WINDOW_S = 0.5
LEAD_S = 1.0  # the first window opens this long after the during phase starts
GAP_S = 1.0  # and the next this long after the one before closes
TAIL_S = 2.0
CONFIRM_RUNS = 3
REPLAYS = 5


class ShrinkError(HarnessError):
    """The incident cannot be shrunk here (it does not fail, or not reliably); exit 2."""


def violation_class(result: ScenarioResult) -> frozenset[str]:
    return frozenset(c.name for c in result.violations) if result.verdict is Verdict.FAIL else frozenset()


def fed_faults(result: ScenarioResult) -> frozenset[str]:
    """Faults (by description) that met data: records in flight when applied or written meanwhile."""
    return frozenset(r.description for r in result.steps if (r.met_data or 0) > 0)


def starved_faults(result: ScenarioResult, needs_data: frozenset[str]) -> list[str]:
    """Faults that met data in the original but met none here (nothing in flight, nothing written).
    A fault is known by its description, which its repeats share: it is fed when any of its windows
    met data (the first of two link cuts may come after its data was delivered, the second not)."""
    fed = fed_faults(result)
    starved = {r.description for r in result.steps if r.description in needs_data and r.met_data == 0}
    return sorted(starved - fed)


@dataclass(frozen=True)
class ShrinkResult:
    scenario: Scenario  # the minimal candidate that failed on every replay (or the best there was)
    stable: frozenset[str]  # the checks the original violated on every confirmation run
    trials: int  # scenario runs in all, confirmations and replays included
    replay_failed: int  # of the final replays, how many failed the same way
    replays: int
    fell_back: int  # candidates given up because a replay of theirs passed


def close_gaps(scenario: Scenario) -> Scenario:
    """Windows moved as early as they go, in their order, the timeline cut after the last one."""
    steps, t = [], LEAD_S
    for step in sorted(scenario.steps, key=lambda s: s.at):
        if step.phase != "during":
            steps.append(step)
            continue
        steps.append(dataclasses.replace(step, at=round(t, 3)))
        t += (step.duration or 0.0) + (GAP_S if has_window(step) else 0.0)
    during = round(max(t - GAP_S, LEAD_S) + TAIL_S, 3)
    # Keep the write rate: the same records over a shorter timeline would be a heavier load.
    ratio = min(1.0, during / scenario.during_s) if scenario.during_s else 1.0
    workload = _fewer(scenario.workload, max(MIN_RECORDS, int(scenario.workload.records * ratio)))
    return dataclasses.replace(scenario, steps=tuple(steps), during_s=min(during, scenario.during_s),
                               workload=workload)


class _Trials:
    """Runs candidates and decides whether each fails reliably, the same way, with data in play."""

    def __init__(self, run: Callable[[Scenario], ScenarioResult], log: Callable[[str], None], confirm_runs: int):
        self.run, self.log, self.confirm_runs = run, log, confirm_runs
        self.count = 0
        self.stable: frozenset[str] = frozenset()
        self.needs_data: frozenset[str] = frozenset()

    def measure_original(self, scenario: Scenario) -> None:
        classes, fed = [], frozenset[str]()
        for n in range(self.confirm_runs):
            self.count += 1
            result = self.run(scenario)
            got = violation_class(result)
            classes.append(got)
            fed |= fed_faults(result)
            self.log(f"original, run {n + 1}/{self.confirm_runs}: "
                     + (f"fails {sorted(got)}" if got else "does not fail"))
        failed = sum(1 for c in classes if c)
        if failed == 0:
            raise ShrinkError(f"incident {scenario.name} does not fail here: there is nothing to shrink")
        stable = frozenset.intersection(*classes)
        if failed < self.confirm_runs or not stable:
            raise ShrinkError(f"incident {scenario.name} failed {failed}/{self.confirm_runs} runs here "
                              f"(violations {[sorted(c) for c in classes]}): it is flaky, and a minimum shrunk from "
                              "a flaky failure would not replay; find what makes it flaky, or lower --confirm-runs")
        self.stable, self.needs_data = stable, fed

    def fails(self, candidate: Scenario, what: str, runs: int | None = None, stop_early: bool = True) -> int:
        """How many of ``runs`` (default: confirm_runs) runs failed the same way; with ``stop_early``
        it stops at the first that does not (what is left cannot make it pass k of k)."""
        runs = runs or self.confirm_runs
        failed = 0
        for n in range(runs):
            self.count += 1
            result = self.run(candidate)
            got = violation_class(result)
            starved = starved_faults(result, self.needs_data)
            run_name = f" (run {n + 1}/{runs})" if runs > 1 else ""
            if not self.stable <= got:
                self.log(f"trial {self.count}: {what}{run_name}: no longer fails the same way "
                         f"({sorted(got) or 'passes'})")
            elif starved:
                self.log(f"trial {self.count}: {what}{run_name}: fails, but no record met "
                         f"{', '.join(starved)} (luck, not the bug): not the same failure")
            else:
                self.log(f"trial {self.count}: {what}{run_name}: still fails {sorted(got)}")
                failed += 1
                continue
            if stop_early:
                break
        return failed


def shrink(scenario: Scenario, run: Callable[[Scenario], ScenarioResult],
           log: Callable[[str], None] = lambda _m: None, *, confirm_runs: int = CONFIRM_RUNS,
           replays: int = REPLAYS) -> ShrinkResult:
    """The smallest scenario that fails the original's way every time (see the module's docstring)."""
    if confirm_runs < 1 or replays < 1:
        raise ShrinkError("confirm_runs and replays must be at least 1")
    trials = _Trials(run, log, confirm_runs)
    trials.measure_original(scenario)
    log(f"original fails with {sorted(trials.stable)} ({len(scenario.steps)} steps, "
        f"{scenario.workload.records} records, {scenario.during_s}s)")
    kept = [scenario]  # every candidate kept, smallest last: the fallbacks

    def attempt(candidate: Scenario, what: str) -> bool:
        """Keep ``candidate`` if it fails the same way every time; True when it was kept."""
        if candidate == kept[-1] or trials.fails(candidate, what) < confirm_runs:
            return False
        kept.append(candidate)
        return True

    _reduce(lambda: kept[-1], attempt)
    fell_back = 0
    while True:
        best = kept.pop()
        last_resort = not kept  # the original: its replays are all counted, for the rate it reports
        failed = trials.fails(best, "replay of the original" if last_resort else "replay of the minimum",
                              runs=replays, stop_early=not last_resort)
        if failed == replays or last_resort:
            break
        fell_back += 1
        log("a replay of the minimum did not fail the same way: falling back to the next larger candidate")
    return ShrinkResult(best, trials.stable, trials.count, failed, replays, fell_back)


def _reduce(current: Callable[[], Scenario], attempt: Callable[[Scenario, str], bool]) -> None:
    scenario = current()
    instants = [s for s in scenario.steps if not has_window(s)]
    bare = dataclasses.replace(scenario, steps=tuple(s for s in scenario.steps if has_window(s)))
    # Both at once first: one full-length trial fewer when (as in a soak) both are harmless.
    if not attempt(close_gaps(bare), f"drop all {len(instants)} instant action(s) and close the gaps") and instants:
        attempt(bare, f"drop all {len(instants)} instant action(s)")
    attempt(close_gaps(current()), "close the gaps between windows")
    _drop_windows(current, attempt)
    _merge_windows(current, attempt)
    attempt(close_gaps(current()), "close the gaps again")
    for index in range(len(current().steps)):
        _halve_window(current, attempt, index)
    for index in range(len(current().steps)):
        _simplify_step(current, attempt, index)
    _cut_workload(current, attempt)
    _cut_changes(current, attempt)


SIMPLIFY_ROUNDS = 12  # per step: each kept simplification halves a number, so a dozen is plenty


def _simplify_step(current: Callable[[], Scenario], attempt: Callable[[Scenario, str], bool], index: int) -> None:
    """The step's own gentler versions (``StepKind.simpler``: a lower latency, fewer users), the
    first that still fails kept, again and again: a minimal incident keeps only the parameter
    values its failure needs, not just the steps."""
    for _ in range(SIMPLIFY_ROUNDS):
        step = current().steps[index]
        for gentler in step.do.simpler():
            if gentler.check() is not None:
                continue  # a gentler value that is no valid step (a toxic's attributes) is no candidate
            candidate = dataclasses.replace(step, do=gentler)
            if attempt(_with_step(current(), index, candidate), f"simplify {step.describe()} to {gentler.describe()}"):
                break
        else:
            return


def _halve_window(current: Callable[[], Scenario], attempt: Callable[[Scenario, str], bool], index: int) -> None:
    """Halve one window while it still fails; then widen it back one step. The smallest window that
    fails k of k sits at a threshold (a delivery timeout, a retry budget), where a replay fails
    only by luck of timing; twice that is the margin a replay needs to fail every time."""
    halved = False
    while True:
        step = current().steps[index]
        if step.duration is None or step.duration / 2 < MIN_WINDOW_S:
            break
        shorter = dataclasses.replace(step, duration=round(step.duration / 2, 3))
        if not attempt(_with_step(current(), index, shorter), f"halve the window of {step.describe()} to "
                                                              f"{shorter.duration}s"):
            break
        halved = True
    step = current().steps[index]
    if halved and step.duration is not None:
        wider = dataclasses.replace(step, duration=round(step.duration * 2, 3))
        attempt(_with_step(current(), index, wider), f"widen the window of {step.describe()} back to "
                                                     f"{wider.duration}s (a margin over the smallest that fails)")


def _cut_workload(current: Callable[[], Scenario], attempt: Callable[[Scenario, str], bool]) -> None:
    best = current()
    if best.workload.records > MIN_RECORDS:
        # The smallest workload first (one trial when the load does not matter), then halving.
        attempt(dataclasses.replace(best, workload=_fewer(best.workload, MIN_RECORDS)),
                f"cut the workload to {MIN_RECORDS} records")
    while current().workload.records // 2 >= MIN_RECORDS and current().workload.records > MIN_RECORDS:
        smaller = _fewer(current().workload, current().workload.records // 2)
        if not attempt(dataclasses.replace(current(), workload=smaller),
                       f"halve the workload to {smaller.records} records"):
            break


MIN_CHANGES = 20


def _cut_changes(current: Callable[[], Scenario], attempt: Callable[[Scenario, str], bool]) -> None:
    """A change workload cut down: none at all (the failure was not about changes), then half as
    many changes while it still fails, then no transactions and no hot row (each kept only when
    the failure survives without it)."""
    mix = current().workload.changes
    if mix is None:
        return
    if attempt(_with_changes(current(), None), "write no changes (inserts only)"):
        return
    while (mix := current().workload.changes) is not None and mix.count // 2 >= MIN_CHANGES:
        half = dataclasses.replace(mix, count=mix.count // 2, chunk=max(1, min(mix.chunk, mix.count // 20)))
        if not attempt(_with_changes(current(), half), f"halve the changes to {half.count}"):
            break
    mix = current().workload.changes
    if mix is not None and mix.transactions:
        attempt(_with_changes(current(), dataclasses.replace(mix, transactions=0.0)), "no multi-change transactions")
    mix = current().workload.changes
    if mix is not None and mix.hot:
        attempt(_with_changes(current(), dataclasses.replace(mix, hot=0.0)), "no hot row")


def _with_changes(scenario: Scenario, mix: ChangeMix | None) -> Scenario:
    return dataclasses.replace(scenario, workload=dataclasses.replace(scenario.workload, changes=mix))


def _fewer(workload: Workload, records: int) -> Workload:
    """Fewer records, in smaller chunks spread over the timeline, and a chunk written right after
    each fault is applied: the writes that meet the faults stay in the file, so a smaller workload
    never leaves a fault to meet data only by luck (the evenly spread chunks may all fall
    outside a short window, or be delivered just before it)."""
    chunk = max(1, min(workload.chunk, records // 10))
    return dataclasses.replace(workload, records=records, chunk=chunk, meet_faults=max(workload.meet_faults, chunk))


def _with_step(scenario: Scenario, index: int, step: Step) -> Scenario:
    return dataclasses.replace(scenario, steps=scenario.steps[:index] + (step,) + scenario.steps[index + 1:])


def _drop_windows(current: Callable[[], Scenario], attempt: Callable[[Scenario, str], bool]) -> None:
    """ddmin over the windowed steps: try dropping chunks of n/2, then n/4, ... then 1 of them.

    Chunks are tried from the end, so dropping one leaves the positions still to try valid.
    """
    def windowed(scenario: Scenario) -> list[int]:
        return [i for i, s in enumerate(scenario.steps) if has_window(s)]

    size = max(1, len(windowed(current())) // 2)
    while True:
        pos = len(windowed(current())) - size
        while pos >= 0:
            scenario = current()
            chunk = set(windowed(scenario)[pos:pos + size])
            names = ", ".join(scenario.steps[i].describe() for i in sorted(chunk))
            attempt(dataclasses.replace(scenario, steps=tuple(s for i, s in enumerate(scenario.steps)
                                                              if i not in chunk)), f"drop {names}")
            pos -= size
        if size == 1:
            break
        size = max(1, size // 2)


def _merge_windows(current: Callable[[], Scenario], attempt: Callable[[Scenario, str], bool]) -> None:
    """Two windows of the same fault become one spanning both: one step fewer, when the failure
    needs the fault's time rather than its two separate onsets."""
    merged = True
    while merged:
        merged = False
        scenario = current()
        steps = scenario.steps
        for i, first in enumerate(steps):
            later = [j for j in range(i + 1, len(steps)) if has_window(steps[j]) and steps[j].do == first.do
                     and first.duration is not None and steps[j].duration is not None and steps[j].at >= first.at]
            if not has_window(first) or not later:
                continue
            second = steps[later[0]]
            span = round(second.at + second.duration - first.at, 3)  # type: ignore[operator]
            joined = dataclasses.replace(first, duration=span)
            candidate = dataclasses.replace(scenario, steps=tuple(
                joined if k == i else s for k, s in enumerate(steps) if k != later[0]))
            if attempt(candidate, f"merge the two windows of {first.describe()} into one of {span}s"):
                merged = True
                break
