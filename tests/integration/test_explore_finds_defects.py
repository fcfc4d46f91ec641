"""faultline explore against real servers: it finds a seeded defect no scenario is named for, and
the clean exporter holds on the same schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalogue import incident
from harness.infra.stack import Stack
from harness.model.target import TargetDefinition
from harness.search.explore import ExplorePlan
from harness.search.explore_run import Explorer

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(400)]

# Out-of-order commits with links going down around them: the kinds the defect below needs, and
# others that must not be mistaken for it.
PLAN = ExplorePlan(seed=5, runs=3, kinds=("held_transaction", "link_down", "write", "pause", "resume"))


def explorer(stack: Stack, out: Path, plan: ExplorePlan, defect: str | None = None) -> Explorer:
    target = TargetDefinition.load()
    env = {target.defect_env: defect} if defect else None
    # Finding is what is tested here: a failure is neither replayed, amplified nor shrunk.
    return Explorer(stack, target, plan, out, extra_env=env, shrink_failures=False, replays=0, amplify_runs=0)


# Slow (18 s): nox -s tests keeps its 12 minutes with the Ctrl-C-during-start test added; CI's
# mutants session catches this defect through its scenario, and `nox -s mutants-explore` by explore.
@pytest.mark.slow
def test_explore_finds_a_seeded_defect_no_scenario_names(fresh_stack: Stack, tmp_path: Path) -> None:
    found = explorer(fresh_stack, tmp_path, PLAN, "read_past_open_transactions").explore()
    assert found.failures, f"no failure in {found.runs} runs: {found.signatures}"
    first = found.failures[0]
    assert "no_loss" in first.violated and "held_transaction" in first.step_kinds
    replay = incident.load(Path(first.incident))  # the run's schedule, replayable as it is
    assert replay.name == first.name and any(s.do.kind_name == "held_transaction" for s in replay.steps)
    assert first.replay == f"faultline reproduce {first.incident} --repeat 5"
    assert found.kinds["held_transaction"] >= 1 and found.runs <= PLAN.runs


# Slow (18 s): CI's explore session runs the clean exporter on a seed's schedules for 90 s.
@pytest.mark.slow
def test_the_clean_exporter_holds_on_the_same_schedules(fresh_stack: Stack, tmp_path: Path) -> None:
    run = explorer(fresh_stack, tmp_path, PLAN)
    found = run.explore()
    assert found.runs == PLAN.runs and not found.failures, [
        (r.name, [c.detail for c in r.violations], r.error) for r in run.results]
    assert found.harness_errors == 0 and found.signatures  # every run judged, each with a signature
    assert sum(found.signatures.values()) == PLAN.runs
