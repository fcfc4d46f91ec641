"""``explore --shard I/N`` and ``explore merge``: N shards play disjoint runs of one seed's
sequence, and their merged report is the report of one explore of all the runs (``--shard 1/1``,
drawn from the seed alone): the same runs, schedules, coverage and signatures. Runs are played by
a stand-in for the stack here (what is merged is the harness's bookkeeping, not the servers')."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from harness.catalogue.scenario import Scenario
from harness.model.plugins import load_target
from harness.model.target import BUNDLED
from harness.report.reports import write_all
from harness.report.result import RunReport, ScenarioResult, Verdict
from harness.search.explore import ExplorePlan, drawable, for_target, schedules
from harness.search.explore_merge import MergeError, merge_shards
from harness.search.explore_run import Explorer

RUNS = 7
TARGET = load_target(BUNDLED)


def _played(scenario: Scenario, _work: Path, _stack: object = None) -> ScenarioResult:
    """A verdict and a reaction that depend on the schedule alone, as a deterministic exporter's."""
    kinds = sorted({type(s.do).__name__ for s in scenario.steps})
    verdict = Verdict.ERROR if int(scenario.name.rsplit("_r", 1)[1]) % 3 == 0 else Verdict.PASS  # runs 3 and 6
    return ScenarioResult(name=scenario.name, description="", incident=None, verdict=verdict,
                          error="the stand-in's harness error" if verdict is Verdict.ERROR else None,
                          counters={"retries": len(kinds) % 3}, log_kinds=kinds[:1])


def _explore(out: Path, shard: tuple[int, int] | None, seed: int = 5) -> RunReport:
    plan = for_target(ExplorePlan(seed=seed, runs=RUNS, keep_going=True, shard=shard), TARGET)
    explorer = Explorer(stack=None, target=TARGET, plan=plan, out=out)  # type: ignore[arg-type]
    explorer.run_once = _played  # type: ignore[method-assign]
    found = explorer.explore()
    report = RunReport(run_id=f"r{shard}", target=str(BUNDLED), backend="local", verdict=Verdict.PASS,
                       duration_s=1.0, scenarios=explorer.results, explore=found)
    write_all(out, report)
    return report


def test_shards_play_disjoint_runs_and_merge_into_the_one_explore_of_all_of_them(tmp_path: Path) -> None:
    whole = _explore(tmp_path / "whole", (1, 1))
    shards = [_explore(tmp_path / f"shard{i}", (i, 3)) for i in (1, 2, 3)]
    assert [len(s.scenarios) for s in shards] == [3, 2, 2]  # runs 1,4,7 / 2,5 / 3,6
    merged = merge_shards([tmp_path / f"shard{i}" for i in (3, 1, 2)], tmp_path / "merged")
    assert merged.explore is not None and whole.explore is not None
    assert [r.name for r in merged.scenarios] == [r.name for r in whole.scenarios]
    assert [r.verdict for r in merged.scenarios] == [r.verdict for r in whole.scenarios]
    for field in ("runs", "harness_errors", "kinds", "overlaps", "inside", "signatures", "distinct_over_time"):
        assert getattr(merged.explore, field) == getattr(whole.explore, field), field
    assert whole.explore.harness_errors == 2 and len(whole.explore.signatures) > 1  # something to compare
    for result in whole.scenarios:  # every run's schedule file, byte for byte
        name = f"{result.name}.toml"
        assert (tmp_path / "merged" / "schedules" / name).read_text() == \
            (tmp_path / "whole" / "schedules" / name).read_text()
    # Sharded runs are drawn from the seed alone: the schedules --plan-only prints.
    plan = for_target(ExplorePlan(seed=5, runs=RUNS), TARGET)
    drawn = [s.name for _run, s, _m in itertools.islice(schedules(plan, drawable(plan, plan.world)[0], []), RUNS)]
    assert drawn == [r.name for r in whole.scenarios]


def test_merge_refuses_shards_that_are_not_of_one_exploration(tmp_path: Path) -> None:
    _explore(tmp_path / "a", (1, 2))
    _explore(tmp_path / "b", (1, 2))  # the same runs again
    with pytest.raises(MergeError, match="run 1 is in both"):
        merge_shards([tmp_path / "a", tmp_path / "b"], tmp_path / "m1")
    _explore(tmp_path / "c", (2, 2), seed=6)
    with pytest.raises(MergeError, match="seed 6"):
        merge_shards([tmp_path / "a", tmp_path / "c"], tmp_path / "m2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MergeError, match="no report.json"):
        merge_shards([tmp_path / "empty"], tmp_path / "m3")


def test_a_shard_outside_its_count_is_refused() -> None:
    with pytest.raises(Exception, match="--shard"):
        ExplorePlan(runs=3, shard=(3, 2)).validate()
    assert dataclasses.replace(ExplorePlan(runs=3), shard=(2, 2)).plays(4)
    assert not dataclasses.replace(ExplorePlan(runs=3), shard=(2, 2)).plays(3)


def test_failures_are_grouped_across_shards_and_their_files_follow_them() -> None:
    from harness.report.result import ExploreFailure
    from harness.search.explore_merge import _moved, _regrouped

    def failure(run: int, shard: str, violated: str) -> ExploreFailure:
        path = f"/{shard}/incidents/explore_s5_r{run}.toml"
        return ExploreFailure(run, f"explore_s5_r{run}", [violated], ["link_down"], path,
                              replay=f"faultline reproduce {path} --repeat 5")

    # Shard a found its group first at run 4; shard b found the same group at run 2.
    grouped = _regrouped([failure(4, "a", "no_loss"), failure(2, "b", "no_loss"), failure(3, "b", "no_corruption")])
    assert [(f.run, f.same_as) for f in grouped] == [(2, None), (3, None), (4, 2)]
    moved = _moved(failure(4, "a", "no_loss"), {"/a/incidents/explore_s5_r4.toml": "/m/incidents/explore_s5_r4.toml"})
    assert moved.incident == "/m/incidents/explore_s5_r4.toml" and "/m/incidents/" in moved.replay
