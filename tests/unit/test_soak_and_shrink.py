"""Soak schedules (seeded, deterministic, healed) and the shrinker's order, without servers:
the shrinker is driven by a judge that fails exactly when a chosen fault is present."""

from __future__ import annotations

import dataclasses

import pytest

from harness.catalogue import incident
from harness.report.journal import Check
from harness.report.result import ScenarioResult, Verdict
from harness.scenario import Checkpoint, LinkDown, Load, Scenario, Step, Toxic, Workload, is_fault
from harness.search.shrink import close_gaps, shrink
from harness.search.soak import CATALOGUE, SoakError, SoakPlan, parse_duration, schedule


def test_same_seed_same_schedule_and_another_seed_another() -> None:
    a = incident.dumps(schedule(SoakPlan(600, 7)))
    assert a == incident.dumps(schedule(SoakPlan(600, 7)))
    assert a != incident.dumps(schedule(SoakPlan(600, 8)))


def test_schedule_alternates_faults_and_quiet_periods_and_closes_before_the_end() -> None:
    plan = SoakPlan(600, 3)
    scenario = schedule(plan)
    faults = [s for s in scenario.steps if is_fault(s)]
    assert len(faults) >= 20  # ten minutes of 4-10 s quiet periods and windows of a few seconds
    kinds = {type(s.do).__name__ + getattr(s.do, "link", "") + getattr(s.do, "service", "") for s in faults}
    assert len(kinds) >= 8  # drawn from across the catalogue
    for before, after in zip(faults, faults[1:], strict=False):
        assert before.at + before.duration < after.at  # one fault at a time, a quiet gap between
    assert faults[-1].at + faults[-1].duration <= plan.duration_s
    checkpoints = [s for s in scenario.steps if isinstance(s.do, Checkpoint)]
    assert len(checkpoints) == len(faults)
    assert scenario.expect.no_resource_leak and scenario.expect.no_loss


def test_schedule_draws_only_the_faults_asked_for() -> None:
    scenario = schedule(SoakPlan(300, 5, faults=("kafka_down",)))
    assert {type(s.do) for s in scenario.steps if is_fault(s)} == {LinkDown}
    assert {s.do.link for s in scenario.steps if is_fault(s)} == {"kafka"}


def test_load_users_add_a_locust_step_for_the_whole_soak() -> None:
    scenario = schedule(SoakPlan(120, 1, load_users=6, load_workers=2))
    loads = [s for s in scenario.steps if isinstance(s.do, Load)]
    assert len(loads) == 1 and loads[0].duration == 120 and loads[0].do.workers == 2


@pytest.mark.parametrize(("bad", "reason"), [
    (SoakPlan(5, 1), "between 10s and 7 days, not 5s"),
    (SoakPlan(60, 1, faults=("disk_on_fire",)), "unknown fault(s) ['disk_on_fire']"),
    (SoakPlan(60, 1, faults=()), "(none given)"),
    (SoakPlan(60, 1, rate=0), "rate must be >= 1"),
    (SoakPlan(60, 1, window_scale=float("nan")), "window scale within [0.01, 100]"),
])
def test_bad_plans_are_refused_with_the_reason(bad: SoakPlan, reason: str) -> None:
    with pytest.raises(SoakError) as info:
        schedule(bad)
    assert reason in str(info.value)
    if bad.faults == ("disk_on_fire",):
        assert "disk_on_fire" in str(info.value) and "kafka_down" in str(info.value)


@pytest.mark.parametrize(("text", "seconds"), [("600", 600), ("90s", 90), ("10m", 600), ("1h30m", 5400),
                                               ("2.5m", 150)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(SoakError, match="cannot read duration"):
        parse_duration(text)


def test_every_catalogue_entry_draws_a_valid_fault() -> None:
    import random

    for name, (draw, (low, high)) in CATALOGUE.items():
        step = Step("during", draw(random.Random(1)), at=1.0, duration=high)
        Scenario(name="x", description=name, steps=(step,)).validate()
        assert 0 < low <= high


# -- shrinking ----------------------------------------------------------------------------------
def _judge(culprit: str, calls: list[Scenario]):  # noqa: ANN202
    """Fails (no_loss) exactly when a fault on the culprit link is in the schedule."""
    def run(scenario: Scenario) -> ScenarioResult:
        calls.append(scenario)
        result = ScenarioResult(scenario.name, scenario.description, None)
        guilty = any(getattr(s.do, "link", None) == culprit for s in scenario.steps)
        result.checks.append(Check("no_loss", not guilty, "judge"))
        result.verdict = Verdict.FAIL if guilty else Verdict.PASS
        return result
    return run


def test_shrink_cuts_a_soak_to_the_one_fault_that_matters_and_closes_the_gaps() -> None:
    soak = schedule(SoakPlan(300, 11))
    culprit_steps = [s for s in soak.steps if is_fault(s) and getattr(s.do, "link", None) == "kafka"]
    assert culprit_steps, "seed 11 must draw a kafka fault for this test"
    calls: list[Scenario] = []
    found = shrink(soak, _judge("kafka", calls), confirm_runs=1, replays=1)
    best = found.scenario
    faults = [s for s in best.steps if is_fault(s)]
    assert found.stable == frozenset({"no_loss"})
    assert len(faults) == 1 and faults[0].do.link == "kafka"
    assert not [s for s in best.steps if isinstance(s.do, Checkpoint)]
    assert faults[0].at == 1.0 and best.during_s < 20  # the quiet minutes are gone
    assert found.trials == len(calls) and found.trials < 40
    assert (found.replay_failed, found.replays, found.fell_back) == (1, 1, 0)
    # Deterministic: the same input shrinks the same way, trial for trial.
    again: list[Scenario] = []
    assert shrink(soak, _judge("kafka", again), confirm_runs=1, replays=1).scenario == best and again == calls


def test_shrink_refuses_a_schedule_that_does_not_fail() -> None:
    from harness.errors import HarnessError

    scenario = Scenario(name="calm", description="no faults")
    with pytest.raises(HarnessError, match="does not fail"):
        shrink(scenario, _judge("kafka", []))


def test_close_gaps_keeps_order_and_the_write_rate() -> None:
    steps = (Step("during", Toxic("redis", "latency", attributes={"latency": 100}), at=30, duration=4),
             Step("during", LinkDown("kafka"), at=50, duration=6))
    scenario = Scenario(name="gappy", description="d", steps=steps, during_s=100,
                        workload=dataclasses.replace(Scenario(name="w", description="d").workload, records=10_000))
    closed = close_gaps(scenario)
    assert [(s.at, s.duration) for s in closed.steps] == [(1.0, 4), (6.0, 6)]
    assert closed.during_s == 14.0
    assert closed.workload.records == 1400  # 100 records/s kept


def test_load_workers_override_reaches_every_load_step_and_nothing_else() -> None:
    from harness.scenario import with_load_workers

    scenario = schedule(SoakPlan(60, 2, load_users=3))
    changed = with_load_workers(scenario, 4)
    assert [s.do.workers for s in changed.steps if isinstance(s.do, Load)] == [4]
    assert [s for s in changed.steps if not isinstance(s.do, Load)] == \
        [s for s in scenario.steps if not isinstance(s.do, Load)]


def test_a_soak_schedule_round_trips_through_an_incident_file(tmp_path) -> None:  # noqa: ANN001
    scenario = schedule(SoakPlan(120, 9, load_users=2, exporter_env=(("EXPORTER_BATCH_SIZE", "500"),)))
    path = incident.write(scenario, tmp_path / "soak.toml")
    assert incident.load(path) == scenario
    text = path.read_text()
    assert 'action = "load"' in text and 'action = "checkpoint"' in text


def test_a_load_step_without_a_window_or_with_a_bad_kind_is_refused(tmp_path) -> None:  # noqa: ANN001
    from harness.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="needs a duration"):
        Scenario(name="x", description="d", steps=(Step("during", Load("source")),)).validate()
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'source' or 'api'"):
        Load("sql")
    bad = tmp_path / "bad.toml"
    bad.write_text('[incident]\nname = "x"\ndescription = "d"\n[expect]\nno_loss = true\n'
                   '[[steps]]\nat = 1.0\naction = "load"\nkind = "source"\nusers = 0\nduration = 5\n')
    with pytest.raises(incident.IncidentError, match=r"bad.toml:10: step 1: Load.users: Input should be greater"):
        incident.load(bad)


def test_shrink_merges_two_windows_of_one_fault_when_both_are_needed() -> None:
    def run(scenario: Scenario) -> ScenarioResult:
        downs = [s for s in scenario.steps if isinstance(s.do, LinkDown)]
        guilty = len(downs) >= 2 or any(s.duration >= 10 for s in downs)  # needs the outage time
        result = ScenarioResult(scenario.name, scenario.description, None)
        result.checks.append(Check("no_loss", not guilty, "judge"))
        result.verdict = Verdict.FAIL if guilty else Verdict.PASS
        return result

    steps = (Step("during", LinkDown("kafka"), at=2, duration=6), Step("during", LinkDown("kafka"), at=12, duration=6),
             Step("during", Toxic("redis", "latency", attributes={"latency": 50}), at=20, duration=3))
    best = shrink(Scenario(name="twice", description="d", steps=steps, during_s=30), run, confirm_runs=1,
                  replays=1).scenario
    # The gaps were closed first (windows at 1 s and 8 s), so the merged window spans 13 s.
    assert [(type(s.do).__name__, s.duration) for s in best.steps] == [("LinkDown", 13.0)]


# -- reductions that keep failing ------------------------------------------------------------------
def _scripted(verdicts: dict[str, list[bool]], calls: list[Scenario], fed: bool = True):  # noqa: ANN202
    """A judge that fails when a kafka fault is present, except on the runs ``verdicts`` scripts
    (by number of fault steps: "1" -> [fail?, fail?, ...] consumed in order). Every fault step's
    journal says ``fed`` records were in flight at apply."""
    from harness.report.journal import StepRecord

    def run(scenario: Scenario) -> ScenarioResult:
        calls.append(scenario)
        result = ScenarioResult(scenario.name, scenario.description, None)
        faults = [s for s in scenario.steps if is_fault(s)]
        script = verdicts.get(str(len(faults)))
        guilty = any(getattr(s.do, "link", None) == "kafka" for s in faults)
        if guilty and script:
            guilty = script.pop(0)
        result.steps = [StepRecord("during", s.describe(), in_flight_at_apply=10 if fed else 0,
                                   written_during=0) for s in faults]
        result.checks.append(Check("no_loss", not guilty, "judge"))
        result.verdict = Verdict.FAIL if guilty else Verdict.PASS
        return result
    return run


def _two_faults() -> Scenario:
    steps = (Step("during", LinkDown("kafka"), at=1.0, duration=4), Step("during", LinkDown("redis"), at=6, duration=4))
    return Scenario(name="two", description="d", steps=steps, during_s=12)


def test_a_reduction_that_fails_only_two_times_of_three_is_not_kept() -> None:
    # With one fault step left (kafka alone), the third confirmation run passes: luck, not kept.
    calls: list[Scenario] = []
    found = shrink(_two_faults(), _scripted({"1": [True, True, False] * 10}, calls), confirm_runs=3, replays=2)
    assert [s.do.link for s in found.scenario.steps if is_fault(s)] == ["kafka", "redis"]
    assert found.replay_failed == 2


def test_the_original_must_fail_every_confirmation_run() -> None:
    from harness.search.shrink import ShrinkError

    with pytest.raises(ShrinkError, match="failed 2/3 runs here"):
        shrink(_two_faults(), _scripted({"2": [True, False, True]}, []), confirm_runs=3)


def test_a_minimum_whose_replay_passes_falls_back_to_the_next_larger_candidate() -> None:
    # The smallest workload fails its three confirmations, then passes its second replay: the
    # next larger candidate (which fails every time) is what gets written.
    from harness.search.shrink import MIN_RECORDS

    runs: dict[str, int] = {}
    judge = _scripted({}, [])

    def run(scenario: Scenario) -> ScenarioResult:
        result = judge(scenario)
        if scenario.workload.records == MIN_RECORDS:
            runs[repr(scenario)] = runs.get(repr(scenario), 0) + 1
            if runs[repr(scenario)] == 5:
                result.checks[0].ok, result.verdict = True, Verdict.PASS
        return result

    found = shrink(_two_faults(), run, confirm_runs=3, replays=5)
    assert found.fell_back == 1
    assert found.scenario.workload.records > MIN_RECORDS
    assert [s.do.link for s in found.scenario.steps if is_fault(s)] == ["kafka"]
    assert (found.replay_failed, found.replays) == (5, 5)


def test_a_reduction_that_starves_a_fault_of_data_is_not_kept() -> None:
    # The original's faults met data; every candidate's journal says nothing was in flight.
    first = {"n": 0}

    def run(scenario: Scenario) -> ScenarioResult:
        first["n"] += 1
        return _scripted({}, [], fed=first["n"] <= 3)(scenario)

    found = shrink(_two_faults(), run, confirm_runs=3, replays=1)
    assert found.scenario == _two_faults()  # nothing could be cut without starving a fault


def test_a_fault_described_twice_is_fed_when_either_of_its_windows_met_data() -> None:
    # Two "kafka link down" windows; the candidate's first meets nothing (its data already
    # delivered), its second meets the records it loses: the fault is fed, not failing by luck.
    # (Found shrinking a Debezium incident: every smaller candidate was refused as starved.)
    from harness.report.journal import StepRecord
    from harness.search.shrink import fed_faults, starved_faults

    result = ScenarioResult("s", "d", None)
    result.steps = [StepRecord("during", "kafka link down", in_flight_at_apply=0, written_during=0),
                    StepRecord("during", "kafka link down", in_flight_at_apply=4000, written_during=0),
                    StepRecord("during", "exporter killed", in_flight_at_apply=0, written_during=0)]
    needs = frozenset({"kafka link down", "exporter killed"})
    assert starved_faults(result, needs) == ["exporter killed"]
    assert fed_faults(result) == {"kafka link down"}
    result.steps[2].in_flight_at_apply = result.steps[2].written_during = None  # unmeasured: never called starved
    assert starved_faults(result, needs) == []


def test_a_halved_window_is_widened_back_one_step_for_margin() -> None:
    # Fails while the outage lasts at least a second: 8 -> 4 -> 2 -> 1 fail, 0.5 does not; the
    # minimum keeps 2 s, twice the threshold, so that a replay does not fail by luck.
    def run(scenario: Scenario) -> ScenarioResult:
        downs = [s for s in scenario.steps if isinstance(s.do, LinkDown)]
        guilty = any((s.duration or 0) >= 1.0 for s in downs)
        result = ScenarioResult(scenario.name, scenario.description, None)
        result.checks.append(Check("no_loss", not guilty, "judge"))
        result.verdict = Verdict.FAIL if guilty else Verdict.PASS
        return result

    scenario = Scenario(name="w", description="d", steps=(Step("during", LinkDown("kafka"), at=1.0, duration=8.0),),
                        during_s=12)
    best = shrink(scenario, run, confirm_runs=1, replays=1).scenario
    assert [s.duration for s in best.steps] == [2.0]


def test_a_smaller_workload_keeps_writes_that_meet_every_fault() -> None:
    from harness.search.shrink import _fewer

    smaller = _fewer(Scenario(name="w", description="d").workload, 50)
    assert (smaller.records, smaller.chunk, smaller.meet_faults) == (50, 5, 5)


def test_shrink_reduces_a_steps_parameters_not_only_its_presence_and_window() -> None:
    # Fails while the Kafka link is at least 100 ms slow: 800 -> 400 -> 200 -> 100 fail, 50 does
    # not; toxicity 1.0 -> 0.5 -> 0.25 fail (any share of connections meets it here).
    def run(scenario: Scenario) -> ScenarioResult:
        toxics = [s.do for s in scenario.steps if isinstance(s.do, Toxic)]
        guilty = any(t.attributes.get("latency", 0) >= 100 for t in toxics)
        result = ScenarioResult(scenario.name, scenario.description, None)
        result.checks.append(Check("no_loss", not guilty, "judge"))
        result.verdict = Verdict.FAIL if guilty else Verdict.PASS
        return result

    slow = Toxic("kafka", "latency", attributes={"latency": 800, "jitter": 40})
    scenario = Scenario(name="p", description="d", steps=(Step("during", slow, at=1.0, duration=2.0),), during_s=4)
    best = shrink(scenario, run, confirm_runs=1, replays=1).scenario
    (toxic,) = [s.do for s in best.steps]
    assert isinstance(toxic, Toxic) and toxic.attributes == {"latency": 100, "jitter": 5}
    assert toxic.toxicity == 0.25


def test_a_soak_by_default_draws_only_what_the_backend_and_target_can_do() -> None:
    from harness.model.capabilities import NeedKind
    from harness.search.soak import available

    def no_protocol_proxies(step: object) -> str | None:
        needs = step.needs()  # type: ignore[attr-defined]
        return "no protocol proxies here" if any(n.kind is NeedKind.PROTOCOL for n in needs) else None

    everything = available(lambda _step: None)
    assert everything == tuple(CATALOGUE)
    kept = available(no_protocol_proxies)
    dropped = set(everything) - set(kept)
    assert dropped == {"kafka_partition_errors", "kafka_answer_lost", "redis_command_errors",
                       "postgres_statement_errors"}, dropped
    drawn = {type(s.do).__name__ for s in schedule(SoakPlan(3600.0, 1, kept)).steps if is_fault(s)}
    assert drawn and not drawn & {"KafkaProduceError", "KafkaRequestFault", "RedisCommandError",
                                  "PostgresStatementError"}, drawn


def test_shrink_halves_a_change_workload_and_drops_what_the_failure_does_not_need() -> None:
    from harness.model.changes import ChangeMix

    def run(scenario: Scenario) -> ScenarioResult:
        result = ScenarioResult(scenario.name, scenario.description, None)
        mix = scenario.workload.changes
        guilty = mix is not None and mix.count >= 100  # lost only among enough changes
        result.checks.append(Check("changes_delivered", not guilty, "judge"))
        result.verdict = Verdict.FAIL if guilty else Verdict.PASS
        return result

    start = Scenario(name="c", description="d", workload=Workload(records=200, changes=ChangeMix(
        count=800, transactions=0.5, hot=0.3)), steps=(Step("during", LinkDown("kafka"), at=1.0, duration=2.0),),
        during_s=4.0).validate()
    found = shrink(start, run, confirm_runs=1, replays=1)
    mix = found.scenario.workload.changes
    assert mix is not None and mix.count == 100 and mix.transactions == 0.0 and mix.hot == 0.0


def test_a_soak_writes_changes_at_its_rate_and_refuses_more_than_can_be_judged() -> None:
    soak = schedule(SoakPlan(120, 5, change_rate=10))
    mix = soak.workload.changes
    assert mix is not None and mix.count == 1200 and mix.chunk == 5
    assert schedule(SoakPlan(120, 5)).workload.changes is None
    with pytest.raises(SoakError, match="changes; 0..1000000 are judged per row"):
        SoakPlan(7 * 24 * 3600, 5, rate=1, change_rate=10).validate()
