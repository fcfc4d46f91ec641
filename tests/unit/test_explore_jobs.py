"""``explore -j N``: runs played side by side on N stacks draw the same schedules, judge them the
same and learn the same as one stack playing them in turn (the guidance lag: see
``harness.search.explore_pool``), whichever run ends first. Runs are played by a stand-in for the
stacks (what is tested is the drawing and the bookkeeping, not the servers')."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from harness.catalogue.scenario import Scenario
from harness.infra.stack import Stack
from harness.model.plugins import load_target
from harness.model.target import BUNDLED
from harness.play.parallel import StackPool
from harness.report.result import Check, ExploreSummary, ScenarioResult, Verdict
from harness.search.explore import ExplorePlan, for_target
from harness.search.explore_pool import GUIDANCE_LAG
from harness.search.explore_run import Explorer

TARGET = load_target(BUNDLED)
RUNS = 24


class StandIn:
    """Plays a run on a named stand-in stack after a random pause (so runs end out of order): its
    verdict and reaction depend on the schedule alone, as a deterministic exporter's would."""

    def __init__(self, timing_seed: int, fail_run: int | None = None) -> None:
        self.rng, self.lock = random.Random(timing_seed), threading.Lock()
        self.fail_run, self.busy, self.clashes = fail_run, set[str](), list[str]()

    def __call__(self, scenario: Scenario, _work: Path, stack: object = None) -> ScenarioResult:
        name = cast(str, stack)
        with self.lock:
            pause = self.rng.uniform(0, 0.02)
            self.clashes += [name] if name in self.busy else []
            self.busy.add(name)
        time.sleep(pause)
        with self.lock:
            self.busy.discard(name)
        kinds = sorted({type(s.do).__name__ for s in scenario.steps})
        run = int(scenario.name.rsplit("_r", 1)[1])
        failed = run == self.fail_run
        return ScenarioResult(name=scenario.name, description="", incident=None,
                              verdict=Verdict.FAIL if failed else Verdict.PASS,
                              checks=[Check("no_loss", not failed, "lost 3 of 10" if failed else "")],
                              counters={"retries": len(kinds) % 4, "dead_lettered": len(scenario.steps) % 3},
                              log_kinds=kinds[:2])


def explore(out: Path, stacks: int, timing_seed: int, fail_run: int | None = None,
            keep_going: bool = True) -> tuple[ExploreSummary, Explorer, StandIn]:
    plan = for_target(ExplorePlan(seed=9, runs=RUNS, keep_going=keep_going), TARGET)
    pool = StackPool([cast(Stack, f"stack-{i}") for i in range(1, stacks + 1)])
    explorer = Explorer(stack=pool.stacks[0], target=TARGET, plan=plan, out=out, pool=pool, shrink_failures=False,
                        replays=0, amplify_runs=0)
    stand_in = StandIn(timing_seed, fail_run)
    explorer.run_once = stand_in  # type: ignore[method-assign]
    return explorer.explore(), explorer, stand_in


def schedules_of(out: Path) -> list[str]:
    return [p.read_text() for p in sorted((out / "schedules").glob("*.toml"), key=lambda p: len(p.name))]


def test_three_stacks_draw_judge_and_learn_what_one_stack_does(tmp_path: Path) -> None:
    serial, serial_explorer, _ = explore(tmp_path / "j1", 1, timing_seed=1)
    for jobs, timing in ((3, 2), (3, 3), (2, 4)):
        side_by_side, explorer, stand_in = explore(tmp_path / f"j{jobs}-{timing}", jobs, timing_seed=timing)
        assert stand_in.clashes == []  # never two runs on one stack at once
        assert {r.stack for r in explorer.results} == set(range(1, jobs + 1))  # every stack played
        assert [r.name for r in explorer.results] == [r.name for r in serial_explorer.results]  # judged in run order
        assert schedules_of(tmp_path / f"j{jobs}-{timing}") == schedules_of(tmp_path / "j1")
        for field in ("runs", "mutated", "kinds", "overlaps", "inside", "signatures", "distinct_over_time"):
            assert getattr(side_by_side, field) == getattr(serial, field), (jobs, field)
        assert side_by_side.guidance_lag == GUIDANCE_LAG
    assert serial.runs == RUNS and serial.mutated > 0  # the corpus was drawn from: guidance was compared


def test_a_failure_stops_the_drawing_and_the_runs_beside_it_are_judged(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.search.explore_run.server_versions", lambda _stack: {"postgres": "stand-in"})
    found, explorer, _ = explore(tmp_path / "j3", 3, timing_seed=5, fail_run=7, keep_going=False)
    assert [f.run for f in found.failures] == [7]
    played = [int(r.name.rsplit("_r", 1)[1]) for r in explorer.results]
    assert played == list(range(1, len(played) + 1)) and 7 <= len(played) <= 7 + 2  # at most two beside it
    assert found.runs == len(played)
    serial, serial_explorer, _ = explore(tmp_path / "j1", 1, timing_seed=5, fail_run=7, keep_going=False)
    assert [r.name for r in serial_explorer.results][-1].endswith("_r7") and serial.runs == 7
