"""faultline explore without servers: drawing, clashes, mutation, determinism, signatures,
coverage and the reports."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from harness import incident
from harness.explore import (
    Coverage,
    ExploreError,
    ExplorePlan,
    _clash,
    _keeps_actions_out,
    _window,
    drawable,
    mutate,
    schedules,
    signature,
)
from harness.journal import Check
from harness.result import ScenarioResult, Verdict
from harness.steps import World, kind_of

PLAN = ExplorePlan(seed=1, runs=40)


def fresh(plan: ExplorePlan = PLAN, count: int = 40) -> list:
    kinds, _never = drawable(plan, World(during_s=plan.during_s))
    return [s for _run, s, _m in itertools.islice(schedules(plan, kinds, []), count)]


def test_the_same_seed_draws_the_same_schedules_and_another_seed_others() -> None:
    assert fresh() == fresh()
    assert fresh() != fresh(ExplorePlan(seed=2, runs=40))


def test_every_schedule_is_valid_within_its_overlap_and_never_clashes() -> None:
    for plan in (PLAN, ExplorePlan(seed=7, runs=40, max_overlap=3)):
        for scenario in fresh(plan):
            faults = [s for s in scenario.steps if s.do.role == "fault"]
            assert faults
            for a, b in itertools.combinations(faults, 2):
                (a_lo, a_hi), (b_lo, b_hi) = _window(a, plan.during_s), _window(b, plan.during_s)
                if a_lo < b_hi + 1.0 and b_lo < a_hi + 1.0:  # a second apart at least
                    assert not _clash(a.do, b.do), scenario.description
            for t in (s.at or 0.0 for s in faults):
                live = [f for f in faults if _window(f, plan.during_s)[0] <= t < _window(f, plan.during_s)[1]]
                assert len(live) <= plan.max_overlap
            away = [_window(f, plan.during_s) for f in faults if _keeps_actions_out(f.do)]
            for action in (s for s in scenario.steps if s.do.role == "action"):
                assert not any(lo <= (action.at or 0.0) < hi for lo, hi in away), scenario.description


def test_a_fault_that_needs_a_server_never_overlaps_one_that_takes_it_away() -> None:
    from harness.scenario import KafkaTopicSetting, LinkDown, RestartService

    assert _clash(KafkaTopicSetting("max.message.bytes", "2000"), RestartService("kafka"))
    assert not _clash(KafkaTopicSetting("max.message.bytes", "2000"), LinkDown("kafka"))  # a good pair
    assert _keeps_actions_out(RestartService("redis")) and not _keeps_actions_out(LinkDown("redis"))


def test_schedules_cover_the_vocabulary_and_put_actions_inside_faults() -> None:
    coverage = Coverage()
    for n, scenario in enumerate(fresh(count=200), 1):
        coverage.note(n, scenario, None, PLAN.during_s)
    kinds, never = drawable(PLAN, World())
    assert set(coverage.kinds) == set(kinds)  # every drawable kind ran within 200 draws
    assert never["export_burst"].startswith("its kind does not draw itself")
    assert coverage.overlaps and any(k.startswith("pause in ") for k in coverage.inside)


def test_every_drawn_workload_can_be_written() -> None:
    from harness.profiles import payloads

    for scenario in fresh(count=60):
        assert len(payloads(scenario.workload.profile, 3, scenario.workload.size, scenario.workload.seed)) == 3


def test_a_pause_always_has_its_resume_and_a_full_disk_an_export() -> None:
    for scenario in fresh(count=200):
        names = [kind_of(s.do) for s in scenario.steps]
        assert names.count("pause") == names.count("resume")
        if "disk_full" in names:
            assert "export" in names and scenario.knobs["disk_usage_threshold"] == "1.0"


def test_mutations_are_valid_deterministic_neighbours() -> None:
    kinds, _never = drawable(PLAN, World())
    parents = fresh(count=20)
    children = [mutate(random.Random(n), p, kinds, PLAN, f"child{n}") for n, p in enumerate(parents)]
    again = [mutate(random.Random(n), p, kinds, PLAN, f"child{n}") for n, p in enumerate(parents)]
    assert children == again
    changed = sum(c.steps != p.steps for c, p in zip(children, parents, strict=True))
    assert changed >= 14  # most mutations change the schedule (some are refused as clashes)


def test_kinds_the_backend_cannot_perform_are_never_drawn() -> None:
    plan = ExplorePlan(seed=1, runs=5, lacks=lambda step: "no root" if kind_of(step) == "disk_full" else None)
    kinds, never = drawable(plan, World())
    assert "disk_full" not in kinds and never["disk_full"] == "no root"
    assert all("disk_full" not in s.description for s in fresh(plan, 60))


def test_bad_plans_are_refused() -> None:
    for bad in (ExplorePlan(), ExplorePlan(runs=3, budget_s=10), ExplorePlan(runs=0),
                ExplorePlan(runs=1, max_overlap=9), ExplorePlan(runs=1, kinds=("no_such_kind",))):
        with pytest.raises(ExploreError):
            bad.validate()


def test_every_schedule_is_an_incident_file_that_reads_back_the_same(tmp_path: Path) -> None:
    for scenario in fresh(count=30):
        path = incident.write(scenario, tmp_path / f"{scenario.name}.toml")
        assert incident.load(path) == scenario


def test_signatures_name_moved_counters_pauses_and_log_kinds() -> None:
    result = ScenarioResult("r", "d", None, verdict=Verdict.PASS,
                            counters={"delivered": 400, "send_failures": 3, "retries": 0},
                            log_kinds=["error: send failed; left in the buffer for redelivery [sink.kafka]"],
                            checks=[Check("pause_within_grace", True)])
    assert signature(result) == "send_failures | pause:ok | error: send failed; left in the buffer for redelivery " \
                                "[sink.kafka]"
    coverage = Coverage()
    scenario = fresh(count=1)[0]
    assert coverage.note(1, scenario, signature(result), PLAN.during_s)
    assert not coverage.note(2, scenario, signature(result), PLAN.during_s)  # seen before: not new
    assert coverage.distinct_over_time == [(1, 1)]


def test_the_reports_show_explores_coverage(tmp_path: Path) -> None:
    from harness.reports import write_all
    from harness.result import ExploreFailure, ExploreSummary, RunReport, read_report

    found = ExploreSummary(seed=1, runs=3, kinds={"link_down": 2}, overlaps={"link_down + toxic": 1},
                           never_drawn={"export_burst": "its kind does not draw itself"}, signatures={"a | - | -": 3},
                           failures=[ExploreFailure(2, "explore_s1_r2", ["no_loss"], ["link_down"], "x.toml",
                                                    replay="faultline reproduce x.toml --repeat 5")], seconds=30)
    write_all(tmp_path, RunReport(run_id="r", target="t", backend="local", verdict=Verdict.FAIL, duration_s=1,
                                  scenarios=[], explore=found))
    for name in ("summary.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "link_down + toxic" in text and "export_burst" in text and "faultline reproduce x.toml" in text
    back = read_report(tmp_path / "report.json").explore
    assert back is not None and back.runs_per_hour == 360.0 and back.failures[0].violated == ["no_loss"]
