"""``faultline mutants``: every seeded defect must be caught, and the clean exporter must pass.

For each defect the target declares, the scenarios that claim to catch it run with the
defect switched on (through the target's ``defect_env``); a scenario catches it when its
verdict is a violation. Judgement is by behaviour alone: nothing here reads which defect is
on inside the exporter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.factory import make_backend
from harness.catalogue.scenario import Scenario, ScenarioError
from harness.infra.stack import Stack
from harness.model.plugins import load_target
from harness.model.target import TargetDefinition
from harness.play.gate import write_incidents
from harness.play.parallel import Jobs, play_all, stamped, started_pool
from harness.play.runner import ScenarioRunner, scenario_workdir
from harness.report.rates import FailureShape
from harness.report.result import ExploreSummary, ScenarioResult, Verdict
from harness.search.explore import ExplorePlan

if TYPE_CHECKING:
    from harness.search.explore_run import Explorer, Progress


@dataclass
class DefectOutcome:
    defect: str
    scenarios: list[str]
    caught_by: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)


@dataclass
class MutantsRun:
    clean: list[ScenarioResult]
    defects: list[DefectOutcome]

    @property
    def ok(self) -> bool:
        return all(r.verdict is Verdict.PASS for r in self.clean) and all(d.caught for d in self.defects)


def plan(target: TargetDefinition, scenarios: list[Scenario]) -> dict[str, list[Scenario]]:
    unclaimed = [d for d in target.defects if not any(d in s.catches for s in scenarios)]
    if unclaimed:
        raise ScenarioError(f"no scenario claims to catch {', '.join(unclaimed)}; add it to a scenario's catches")
    unknown = sorted({d for s in scenarios for d in s.catches} - set(target.defects))
    if unknown:
        raise ScenarioError(f"scenarios claim defects the target does not declare: {', '.join(unknown)}")
    return {d: [s for s in scenarios if d in s.catches] for d in target.defects}


def _reporter(on_result: Callable[[str, ScenarioResult], None] | None,
              label: str) -> Callable[[ScenarioResult], None] | None:
    """``on_result`` with the run's label (clean, or the defect) bound."""
    if on_result is None:
        return None
    return lambda result: on_result(label, result)


def run_mutants(scenarios: list[Scenario], target_path: Path, out: Path, *, backend: str = "local",
                on_result: Callable[[str, ScenarioResult], None] | None = None,
                jobs: Jobs | None = None) -> MutantsRun:
    """The clean exporter on every scenario and each defect on the scenarios that claim it, all
    of them one list played on ``jobs`` stacks side by side (default: one)."""
    target = load_target(target_path)
    by_defect = plan(target, scenarios)
    work = scenario_workdir(out)
    plays = [Play("clean", s, None) for s in scenarios] + [
        Play(defect, s, {target.defect_env: defect}) for defect, claimed in by_defect.items() for s in claimed]
    lock, began = threading.Lock(), time.monotonic()

    def play(number: int, stack: Stack, item: Play) -> ScenarioResult:
        started = time.monotonic()
        result = stamped(ScenarioRunner(stack, target, item.scenario, work / item.label, extra_env=item.env).run(),
                         number, began, started)
        if on_result is not None:
            with lock:
                on_result(item.label, result)
        return result

    with started_pool(lambda: make_backend(backend, logical_replication=target.postgres_logical_replication,
                                           redis_sentinel=target.redis_discovery == "sentinel"),
                      jobs or Jobs(1, "")) as pool:
        played = play_all(pool, plays, play)
    results = [(item, r) for item, r in zip(plays, played, strict=True) if r is not None]
    clean = [r for item, r in results if item.label == "clean"]
    return MutantsRun(clean, [_outcome(target, defect, claimed, [r for item, r in results if item.label == defect],
                                       work) for defect, claimed in by_defect.items()])


@dataclass(frozen=True)
class Play:
    label: str  # clean, or the defect switched on
    scenario: Scenario
    env: dict[str, str] | None


def _outcome(target: TargetDefinition, defect: str, claimed: list[Scenario], results: list[ScenarioResult],
             work: Path) -> DefectOutcome:
    outcome = DefectOutcome(defect, [s.name for s in claimed])
    write_incidents(work / defect / "incidents", claimed, results, target, extra_env={target.defect_env: defect})
    for result in results:
        if result.verdict is Verdict.FAIL:
            outcome.caught_by.append(result.name)
            outcome.violations += [f"{result.name}: {c.name}: {c.detail}" for c in result.violations[:3]]
        elif result.verdict is Verdict.ERROR:
            outcome.errors.append(f"{result.name}: {result.error}")
    return outcome


@dataclass
class ExploreMutants:
    """``faultline mutants --explore``: explore from one seed and budget against each seeded defect,
    naming no scenario; each must be found, and the clean exporter must pass the same budget."""

    clean: ExploreSummary
    found: dict[str, ExploreSummary]

    @property
    def ok(self) -> bool:
        return not self.clean.failures and all(s.failures for s in self.found.values())


ATTRIBUTION_RUNS = 3


def defect_made(explorer: Explorer, scenario: Scenario, result: ScenarioResult, env: dict[str, str]) -> str | None:
    """None when the failure is the seeded defect's: replayed with the defect it fails the same way
    at least once in ATTRIBUTION_RUNS, and replayed on the clean exporter it never does. A rare
    failure of the clean exporter (found once, under a clock fault) is not counted as the defect
    caught: the reason why not, else."""
    shape = FailureShape.of(result)
    work = explorer.out / "attribution"
    with_defect = sum(shape.matches(explorer.run_once(scenario, work)) for _ in range(ATTRIBUTION_RUNS))
    explorer.extra_env = None
    try:
        clean = sum(shape.matches(explorer.run_once(scenario, work)) for _ in range(ATTRIBUTION_RUNS))
    finally:
        explorer.extra_env = env
    if clean:
        return f"the clean exporter fails it too ({clean}/{ATTRIBUTION_RUNS}, {shape.describe()})"
    if not with_defect:
        return (f"it did not fail again with the defect (0/{ATTRIBUTION_RUNS}), nor clean: a rare failure, not "
                "shown to be the defect's")
    return None


def run_mutants_explore(target_path: Path, out: Path, plan: ExplorePlan, *, backend: str = "local",
                        on_run: Callable[[str, Progress], None] | None = None,
                        defects: tuple[str, ...] = ()) -> ExploreMutants:
    from harness.search.explore_run import Explorer, against

    target = load_target(target_path)
    chosen = defects or target.defects
    unknown = sorted(set(chosen) - set(target.defects))
    if unknown:
        raise ScenarioError(f"the target declares no defect {', '.join(unknown)}; it declares "
                            f"{', '.join(target.defects)}")
    found: dict[str, ExploreSummary] = {}
    with make_backend(backend, logical_replication=target.postgres_logical_replication,
                      redis_sentinel=target.redis_discovery == "sentinel") as stack:
        explore_plan = against(plan, stack, target)

        def explore(label: str, env: dict[str, str] | None) -> ExploreSummary:
            report = (lambda p: on_run(label, p)) if on_run else (lambda _p: None)
            # Found is what is asked here: the finding is neither replayed, amplified nor shrunk, but
            # it must be the defect's (see ``defect_made``); explore goes on past one that is not.
            explorer = Explorer(stack, target, explore_plan, out / label, extra_env=env, on_run=report,
                                shrink_failures=False, replays=0, amplify_runs=0)
            if env is not None:
                explorer.attribute = lambda scenario, result: defect_made(explorer, scenario, result, env)
            return explorer.explore()

        clean = explore("clean", None)
        for defect in chosen:
            found[defect] = explore(defect, {target.defect_env: defect})
    return ExploreMutants(clean, found)
