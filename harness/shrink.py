"""``faultline shrink FILE``: deterministic minimisation of a failing schedule.

In a fixed order (hypothesis-style, so the same input always shrinks the same way), keeping a
change only when the run still fails with the same class of violation (at least one invariant
the original broke):

1. drop every instant action at once (checkpoints and the like) and close the gaps: every
   window moved as early as it can go, the timeline cut after the last (a soak's quiet
   periods make each later trial shorter); failing that, each of the two alone, then
3. drop fault and load steps, in halves, then quarters, ... then one at a time (ddmin), then
   close the gaps again, then
4. merge two windows of the same fault into one that spans both, then
5. halve each window, then lower each load (halve its users), then cut the workload to its
   minimum or, failing that, halve it (in smaller chunks, so writes still meet the faults).

Reductions that move timing (shorter windows, fewer records) are kept only if they fail twice:
near a threshold a run can fail by luck, and the minimal file must replay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from harness.errors import HarnessError
from harness.runner import ScenarioResult
from harness.scenario import Load, Scenario, Step, Workload, has_window

MIN_RECORDS = 50
MIN_WINDOW_S = 0.5
LEAD_S = 1.0  # the first window opens this long after the during phase starts
GAP_S = 1.0  # and the next this long after the one before closes
TAIL_S = 2.0


def violation_class(result: ScenarioResult) -> frozenset[str]:
    return frozenset(c.name for c in result.violations) if result.verdict == "fail" else frozenset()


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


def shrink(scenario: Scenario, run: Callable[[Scenario], ScenarioResult],
           log: Callable[[str], None] = lambda _m: None) -> tuple[Scenario, frozenset[str], int]:
    """Return the smallest failing scenario found, the violation class it keeps, and the trials run."""
    original = violation_class(run(scenario))
    if not original:
        raise HarnessError(f"incident {scenario.name} does not fail here: there is nothing to shrink")
    log(f"original fails with {sorted(original)} ({len(scenario.steps)} steps, "
        f"{scenario.workload.records} records, {scenario.during_s}s)")
    trials = 1
    best = scenario

    def keeps(candidate: Scenario, what: str) -> bool:
        nonlocal trials
        trials += 1
        got = violation_class(run(candidate))
        kept = bool(got & original)
        log(f"trial {trials}: {what}: {'still fails ' + str(sorted(got)) if kept else 'no longer fails the same way'}")
        return kept

    def attempt(candidate: Scenario, what: str, confirm: bool = False) -> bool:
        """Keep ``candidate`` if it still fails the same way; True when it was kept."""
        nonlocal best
        # confirm: a shorter window can fail by luck near a timing threshold (a window just over a
        # delivery timeout); it is kept only if it fails twice, so the minimal file replays.
        if candidate != best and keeps(candidate, what) and (not confirm or keeps(candidate, f"{what} (again)")):
            best = candidate
            return True
        return False

    instants = [s for s in best.steps if not has_window(s)]
    bare = dataclasses.replace(best, steps=tuple(s for s in best.steps if has_window(s)))
    # Both at once first: one full-length trial fewer when (as in a soak) both are harmless.
    attempt(close_gaps(bare), f"drop all {len(instants)} instant action(s) and close the gaps")
    if instants and best is scenario:
        attempt(bare, f"drop all {len(instants)} instant action(s)")
    attempt(close_gaps(best), "close the gaps between windows")
    _drop_windows(lambda: best, attempt)
    _merge_windows(lambda: best, attempt)
    attempt(close_gaps(best), "close the gaps again")
    for index in range(len(best.steps)):
        while True:
            step = best.steps[index]
            if step.duration is None or step.duration / 2 < MIN_WINDOW_S:
                break
            shorter = dataclasses.replace(step, duration=round(step.duration / 2, 3))
            if not attempt(_with_step(best, index, shorter),
                           f"halve the window of {step.describe()} to {shorter.duration}s", confirm=True):
                break
    for index in range(len(best.steps)):
        while isinstance(best.steps[index].do, Load) and best.steps[index].do.users > 1:
            step = best.steps[index]
            lighter = dataclasses.replace(step, do=dataclasses.replace(step.do, users=step.do.users // 2))
            if not attempt(_with_step(best, index, lighter), f"lower the load to {lighter.do.users} users"):
                break
    if best.workload.records > MIN_RECORDS:
        # The smallest workload first (one trial when the load does not matter), then halving.
        attempt(dataclasses.replace(best, workload=_fewer(best.workload, MIN_RECORDS)),
                f"cut the workload to {MIN_RECORDS} records", confirm=True)
    while best.workload.records // 2 >= MIN_RECORDS and best.workload.records > MIN_RECORDS:
        smaller = _fewer(best.workload, best.workload.records // 2)
        if not attempt(dataclasses.replace(best, workload=smaller), f"halve the workload to {smaller.records} records",
                       confirm=True):
            break
    return best, original, trials


def _fewer(workload: Workload, records: int) -> Workload:
    """Fewer records, in smaller chunks: writes still spread over the timeline (and so still land
    inside the fault windows) instead of arriving in one chunk before the first fault."""
    return dataclasses.replace(workload, records=records, chunk=max(1, min(workload.chunk, records // 10)))


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
