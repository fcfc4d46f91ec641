"""The amplifier's search on simulated failure rates: no servers, a seeded coin per run whose bias
depends on the schedule, as a race depends on how often a fault lands in its window."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from harness.catalogue.scenario import Expect, Scenario, Step, Workload
from harness.report.journal import Check
from harness.report.result import LedgerSummary, ScenarioResult, Verdict
from harness.scenario import KillExporter, LinkDown, RedisCommandError
from harness.search.amplify import FailureShape, Rate, amplify, measure, neighbours

SHAPE = FailureShape(frozenset({"no_loss"}), frozenset({"source->buffer (never reached the buffer)"}))


def finding() -> Scenario:
    return Scenario(name="found", description="d", workload=Workload(records=200, chunk=50),
                    steps=(Step("during", LinkDown("postgres"), at=1.0, duration=1.0),
                           Step("during", KillExporter(), at=2.5, duration=0.5)),
                    expect=Expect(), during_s=4.0).validate()


def result(verdict: Verdict, checks: tuple[str, ...] = ("no_loss",),
           hop: str = "source->buffer (never reached the buffer)") -> ScenarioResult:
    return ScenarioResult("found", "d", None, verdict, checks=[Check(c, False, "x") for c in checks],
                          ledger=LedgerSummary(lost_hops={"7": hop}) if verdict is Verdict.FAIL else None)


def simulated(bias: Callable[[Scenario], float], seed: int = 3,
              **failing: object) -> Callable[[Scenario], ScenarioResult]:
    """A run that fails the finding's way with probability ``bias(scenario)``."""
    coin = random.Random(seed)

    def run(scenario: Scenario) -> ScenarioResult:
        return result(Verdict.FAIL, **failing) if coin.random() < bias(scenario) else result(Verdict.PASS)  # type: ignore[arg-type]
    return run


def link_windows(scenario: Scenario) -> int:
    return sum(isinstance(s.do, LinkDown) for s in scenario.steps)


def test_a_race_that_needs_more_onsets_is_amplified_to_nine_of_ten() -> None:
    # Each window of the link cut is one more chance to land in the race (35 % each); fast polls
    # widen the race a little. A replay of the original fails about one time in three.
    def bias(scenario: Scenario) -> float:
        miss = 0.65 ** link_windows(scenario) * (0.8 if scenario.knobs.get("poll_interval_s") == "0.05" else 1.0)
        return 1 - miss

    run = simulated(bias)
    original = measure(finding(), run, SHAPE, 10)
    assert original.failed <= 6, original
    found = amplify(finding(), run, SHAPE, original, budget_runs=400)
    # Handed over on a second, fresh measurement of ten.
    assert found.reached and found.rate.runs == 10 and found.rate.failed >= 9, found.rate
    assert found.changes[-1].endswith(f"({found.rate})")
    assert link_windows(found.scenario) >= 3 and found.changes, found.changes
    # Noise may keep a lever that does nothing (a trial lucky against its parent), but what got
    # there is the lever that matters.
    assert sum("repeat postgres link down" in c for c in found.changes) >= 2, found.changes
    assert found.runs <= 400
    assert 1 - 0.65 ** link_windows(found.scenario) >= 0.85  # what it found is truly that reliable
    # Deterministic: the same coin gives the same search.
    again = amplify(finding(), simulated(bias), SHAPE, measure(finding(), simulated(bias), SHAPE, 10),
                    budget_runs=400)
    assert again.changes == amplify(finding(), simulated(bias), SHAPE,
                                    measure(finding(), simulated(bias), SHAPE, 10), budget_runs=400).changes


def test_nothing_is_kept_that_fails_only_another_way_or_as_a_harness_error() -> None:
    """The clean exporter is never amplified into a false failure: a run that fails other checks,
    loses at another hop, or errors, is no failure of the finding's."""
    for other in (dict(checks=("key_order",)), dict(hop="buffer->sink (read, never delivered)")):
        run = simulated(lambda s: 1.0 if link_windows(s) > 1 else 0.0, **other)
        found = amplify(finding(), run, SHAPE, Rate(0, 5), budget_runs=60)
        assert not found.reached and found.rate == Rate(0, 5) and found.changes == (), found
    errors = amplify(finding(), lambda s: result(Verdict.ERROR), SHAPE, Rate(0, 5), budget_runs=30)
    assert errors.rate == Rate(0, 5) and errors.runs <= 30


def test_a_neighbour_that_cannot_beat_its_parent_is_dropped_early() -> None:
    runs: list[str] = []

    def run(scenario: Scenario) -> ScenarioResult:
        runs.append(scenario.name)
        return result(Verdict.PASS)

    found = amplify(finding(), run, SHAPE, Rate(6, 10), budget_runs=1000)
    # A parent at 6/10: a neighbour that passed 5 times can reach 5/10 at best and is dropped then;
    # after 4 runs it can no longer beat 6/10; the parent is then measured again (6/20 pooled), and
    # each neighbour is dropped after the 5 screening runs.
    candidates = sum(1 for _ in neighbours(finding()))
    assert found.runs == len(runs) == candidates * 4 + 10 + candidates * 5, (found.runs, candidates)
    assert found.rate == Rate(6, 20)
    assert found.scenario == finding() and not found.changes


def test_the_budget_bounds_the_search() -> None:
    found = amplify(finding(), simulated(lambda s: 0.3), SHAPE, Rate(3, 10), budget_runs=25)
    assert found.runs <= 25


def test_levers_make_valid_distinct_scenarios() -> None:
    scenario = finding().__class__(**{**finding().__dict__, "steps": finding().steps + (
        Step("during", RedisCommandError(command="XADD", answer="BUSY", nth=3, times=1, probability=0.5),
             at=2.5, duration=0.8),)}).validate()
    made = list(neighbours(scenario, knobs=frozenset({"poll_interval_s"})))
    names = [what for what, _s in made]
    assert any(n.startswith("repeat postgres link down") for n in names)
    assert any("harsher" in n and "every time" in n for n in names)  # times=0
    assert any("harsher" in n and "from the 1. on" in n for n in names)  # nth=1
    assert not any("delivery_timeout_ms" in n for n in names)  # a knob the target does not map
    assert any(n.startswith("repeat exporter killed") for n in names)
    assert any(n.startswith("widen the window of exporter killed") for n in names)
    assert len({repr(s) for _w, s in made}) == len(made) and all(s != scenario for _w, s in made)


def test_rates_are_said_as_a_person_reads_them() -> None:
    assert Rate(10, 10).said() == "reproduces 10/10" and Rate(3, 10).said() == "reproduces 3/10"
    assert Rate(0, 10).said() == "reproduces 0/10, found once"
    assert Rate(9, 10).reaches() and not Rate(8, 10).reaches() and Rate(5, 5).reaches()


def test_a_finding_is_measured_and_amplified_into_files_that_state_their_rates(tmp_path) -> None:  # noqa: ANN001
    from harness.catalogue import incident
    from harness.model.plugins import load_target
    from harness.model.target import BUNDLED
    from harness.search.handover import Measuring, hand_over

    path = incident.write(finding(), tmp_path / "found.toml", comment="Found by a test")
    run = simulated(lambda s: 1 - 0.5 ** link_windows(s), seed=5)
    how = Measuring(run, load_target(BUNDLED), {"redis": "7"}, "some_defect", replays=5, amplify_runs=200)
    handed = hand_over(finding(), FailureShape.of(result(Verdict.FAIL)), path, how)
    assert handed.rate.runs == 5 and not handed.rate.reaches()
    original = incident.load(path)
    assert original.reproduction is not None and original.reproduction.rate == str(handed.rate)
    assert original.reproduction.violates == ("no_loss",) and original.reproduction.defect == "some_defect"
    assert "Found by a test" in path.read_text() and f"Measured: {handed.rate.said()}" in path.read_text()
    assert handed.amplified is not None and handed.amplified.reached and handed.amplified_path is not None
    amplified = incident.load(handed.amplified_path)
    assert amplified.reproduction is not None and amplified.reproduction.rate == str(handed.amplified.rate)
    assert link_windows(amplified) > 1 and amplified.name == "found_amp"
    text = handed.amplified_path.read_text()
    assert "Amplified from found.toml" in text and "repeat postgres link down" in text
    assert handed.best == (handed.amplified.scenario, handed.amplified.rate)
    assert "amplified: reproduces" in handed.said()


def test_a_finding_that_replays_every_time_is_not_amplified(tmp_path) -> None:  # noqa: ANN001
    from harness.catalogue import incident
    from harness.model.plugins import load_target
    from harness.model.target import BUNDLED
    from harness.search.handover import Measuring, hand_over

    path = incident.write(finding(), tmp_path / "found.toml", comment="c")
    how = Measuring(simulated(lambda s: 1.0), load_target(BUNDLED), {}, None, replays=3)
    handed = hand_over(finding(), FailureShape.of(result(Verdict.FAIL)), path, how)
    assert handed.rate == Rate(3, 3) and handed.amplified is None and handed.said() == "reproduces 3/3"
    assert not (tmp_path / "found.amp.toml").exists()


class _Replayer:
    """Stands in for an Explorer: fails with the defect on, and clean when ``clean_fails``."""

    def __init__(self, with_defect: bool, clean_fails: bool) -> None:
        self.extra_env: dict[str, str] | None = {"D": "x"}
        self.out = Path("/nonexistent")
        self.with_defect, self.clean_fails = with_defect, clean_fails

    def run_once(self, scenario: Scenario, work: Path) -> ScenarioResult:
        fails = self.with_defect if self.extra_env else self.clean_fails
        return result(Verdict.FAIL) if fails else result(Verdict.PASS)


def test_mutants_explore_counts_only_failures_the_defect_makes() -> None:
    from harness.search.mutants import defect_made

    found = result(Verdict.FAIL)
    assert defect_made(_Replayer(True, False), finding(), found, {"D": "x"}) is None  # type: ignore[arg-type]
    clean_too = defect_made(_Replayer(True, True), finding(), found, {"D": "x"})  # type: ignore[arg-type]
    assert clean_too is not None and "clean exporter fails it too" in clean_too
    rare = defect_made(_Replayer(False, False), finding(), found, {"D": "x"})  # type: ignore[arg-type]
    assert rare is not None and "did not fail again with the defect" in rare


def test_faults_on_the_hop_where_records_were_lost_are_pulled_first() -> None:
    from harness.scenario import RestartService

    scenario = Scenario(name="s", description="d", workload=Workload(records=100),
                        steps=(Step("during", RestartService("kafka"), at=0.5, duration=1.0),
                               Step("during", LinkDown("postgres"), at=2.0, duration=1.0)),
                        expect=Expect(), during_s=4.0).validate()
    names = [w for w, _s in neighbours(scenario, hops=frozenset({"source->buffer (never reached the buffer)"}))]
    kafka = [n for n in names if "kafka" in n and "knob" not in n]
    first_kafka = names.index(kafka[0])
    assert names[0].startswith("repeat postgres link down")
    assert all(names.index(n) < first_kafka for n in names if "postgres" in n or n.startswith("knob"))
    # A loss after the buffer: the Kafka fault first.
    after = [w for w, _s in neighbours(scenario, hops=frozenset({"buffer->sink (reached the buffer, not the sink)"}))]
    assert "kafka" in after[0]
