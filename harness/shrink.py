"""``faultline shrink FILE``: deterministic minimisation of a failing schedule.

In a fixed order (hypothesis-style, so the same input always shrinks the same way): drop each
step, then halve each fault window, then halve the workload, keeping a change only when the
run still fails with the same class of violation (at least one invariant the original broke).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from harness.errors import HarnessError
from harness.runner import ScenarioResult
from harness.scenario import Scenario

MIN_RECORDS = 50
MIN_WINDOW_S = 0.5


def violation_class(result: ScenarioResult) -> frozenset[str]:
    return frozenset(c.name for c in result.violations) if result.verdict == "fail" else frozenset()


def shrink(scenario: Scenario, run: Callable[[Scenario], ScenarioResult],
           log: Callable[[str], None] = lambda _m: None) -> tuple[Scenario, frozenset[str], int]:
    """Return the smallest failing scenario found, the violation class it keeps, and the trials run."""
    original = violation_class(run(scenario))
    if not original:
        raise HarnessError(f"incident {scenario.name} does not fail here: there is nothing to shrink")
    log(f"original fails with {sorted(original)} ({len(scenario.steps)} steps, "
        f"{scenario.workload.records} records)")
    trials = 1
    best = scenario

    def keeps(candidate: Scenario, what: str) -> bool:
        nonlocal trials
        trials += 1
        got = violation_class(run(candidate))
        kept = bool(got & original)
        log(f"trial {trials}: {what}: {'still fails ' + str(sorted(got)) if kept else 'no longer fails the same way'}")
        return kept

    for index in reversed(range(len(best.steps))):
        candidate = dataclasses.replace(best, steps=best.steps[:index] + best.steps[index + 1:])
        if keeps(candidate, f"drop step {index + 1} ({best.steps[index].describe()})"):
            best = candidate
    for index, step in enumerate(best.steps):
        while step.duration is not None and step.duration / 2 >= MIN_WINDOW_S:
            shorter = dataclasses.replace(step, duration=round(step.duration / 2, 3))
            candidate = dataclasses.replace(best, steps=best.steps[:index] + (shorter,) + best.steps[index + 1:])
            if not keeps(candidate, f"halve the window of {step.describe()} to {shorter.duration}s"):
                break
            best, step = candidate, shorter
    while best.workload.records // 2 >= MIN_RECORDS:
        smaller = dataclasses.replace(best.workload, records=best.workload.records // 2)
        candidate = dataclasses.replace(best, workload=smaller)
        if not keeps(candidate, f"halve the workload to {smaller.records} records"):
            break
        best = candidate
    return best, original, trials
