"""Typed results (report.json schema 2 round trip, schema 1 read, malformed reports refused), the timeline's
plan and the judge's metric rule: all without servers."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checks import Evidence, registered_checks
from harness.checks.metrics import metrics_agree
from harness.judge.sinks import DeadLetterRecord, SinkRecord
from harness.play.player import plan
from harness.play.verdict import SinkContents
from harness.report.journal import Check, StepRecord
from harness.report.report_file import ReportUnreadable, read_report
from harness.report.result import (
    CheckpointPoint,
    LedgerSummary,
    MetricsSnapshot,
    RunReport,
    ScenarioResult,
    Series,
    Verdict,
)
from harness.scenario import Checkpoint, Expect, LinkDown, Scenario, Step, Workload
from harness.steps.failover import RedisFailover
from harness.steps.kafka_failover import KafkaIsrShrunk


def _report() -> RunReport:
    failed = ScenarioResult("lossy", "d", "kafka_outage", verdict=Verdict.FAIL,
                            checks=[Check("no_loss", False, "3 lost [ids]")],
                            steps=[StepRecord("during", "kafka link down", applied_at=1.0, removed_at=3.0)],
                            ledger=LedgerSummary(ok=False, counts={"lost": 3}, samples={"lost": [4, 5, 6]}),
                            series=Series(delivered_per_s=[(0.5, 10.0), (1.5, 0.0), (2.5, 0.0)]))
    skipped = ScenarioResult("disk", "d", None, verdict=Verdict.SKIPPED, skipped="the backend cannot mount")
    return RunReport(run_id="r", target="t.toml", backend="local", verdict=Verdict.FAIL, duration_s=3.0,
                     scenarios=[failed, skipped])


def test_report_json_round_trips_through_the_types(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(_report().to_json())
    raw = json.loads(path.read_text())
    assert raw["schema"] == 2 and raw["scenarios"][1]["skipped"] == "the backend cannot mount"
    assert raw["scenarios"][1]["error"] is None  # a skip is not a harness error
    back = read_report(path)
    assert back == _report()
    assert back.scenarios[0].verdict is Verdict.FAIL and back.scenarios[0].ledger is not None
    assert back.scenarios[0].ledger.count("lost") == 3


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.pop("schema"), "schema None is not one this version reads"),
    (lambda r: r.update(schema=3), "schema 3 is not one this version reads"),
    (lambda r: r["scenarios"][0].update(verdict="maybe"), "scenarios.0.verdict"),
    (lambda r: r["scenarios"][0]["checks"][0].update(ok="no"), "scenarios.0.checks.0.ok"),
    (lambda r: r["scenarios"][0].update(ledger=[1, 2]), "scenarios.0.ledger"),
    (lambda r: r.update(verdikt="pass"), "verdikt: not a field of a report"),
    (lambda r: r["scenarios"][0]["checks"][0].update(okay=True), "scenarios.0.checks.0.okay: not a field"),
    (lambda r: r.update(beside={"wal": ["disk"]}), "beside: {'wal': ['disk']}, yet"),
    (lambda r: r["scenarios"][0].update(stack=2), "scenarios.0.stack: 2, yet the run played on 1"),
    (lambda r: r.update(jobs=0), "jobs: 0 is not a number of stacks"),
    (lambda r: r.update(jobs=1.5), "field jobs"),
    (lambda r: r["scenarios"][0].update(started_s=-1.0), "scenarios.0.started_s: -1.0 is negative"),
])
def test_a_malformed_report_is_refused_naming_the_field(tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    raw = json.loads(_report().to_json())
    edit(raw)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ReportUnreadable, match=re.escape(message)):
        read_report(path)


def test_compare_and_report_exit_2_on_a_malformed_report(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "report.json").write_text(_report().to_json())
    (bad / "report.json").write_text(json.dumps({"schema": 1, "scenarios": "none"}))
    for args in (["compare", str(good), str(bad)], ["report", str(bad)]):
        done = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 2, done.stderr
        assert "report.json" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "harness.cli", "compare", str(good), str(good), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows = {row["scenario"]: row for row in json.loads(done.stdout)}
    assert rows["lossy"]["throughput_under_fault"] == {"kafka link down": [0.0, 0.0]}
    assert rows["lossy"]["verdict_changed"] is False and rows["lossy"]["violations_b"] == ["no_loss"]


# -- the timeline's plan ----------------------------------------------------------------------------
def test_plan_spreads_the_rest_of_the_workload_and_orders_apply_write_remove() -> None:
    fault = Step("during", LinkDown("kafka"), at=2.0, duration=3.0)
    scenario = Scenario(name="p", description="d", steps=(fault, Step("during", Checkpoint(), at=6.0)),
                        workload=Workload(records=100, chunk=20, before_fraction=0.2, meet_faults=5), during_s=8.0)
    events, end = plan(scenario, already_written=20)
    assert end == 8.0
    writes = [e for e in events if e.kind == "write"]
    assert sum(e.count for e in writes) == 80 + 5  # the rest of the workload, and 5 to meet the fault
    assert [e.at for e in writes if e.count == 20] == [0.0, 2.0, 4.0, 6.0]
    at_two = [(e.kind, e.count) for e in events if e.at == 2.0]
    assert at_two[0] == ("apply", 0)  # the fault first, then the data that meets it
    assert sorted(at_two[1:]) == [("write", 5), ("write", 20)]
    assert [(e.kind, e.at) for e in events if e.step is fault] == [("apply", 2.0), ("remove", 5.0)]
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_a_failover_meets_writes_after_it_as_well_as_at_its_start() -> None:
    failover = Step("during", RedisFailover(lag="cut"), at=1.0, duration=2.0)
    scenario = Scenario(name="p", description="d", steps=(failover,), during_s=3.0,
                        workload=Workload(records=10, chunk=10, before_fraction=1.0, meet_faults=7)).validate()
    events, _end = plan(scenario, already_written=10)
    assert [(e.kind, e.at) for e in events] == [("apply", 1.0), ("write", 1.0), ("remove", 3.0), ("write", 3.05)]
    plain = dataclasses.replace(scenario, steps=(Step("during", LinkDown("redis"), at=1.0, duration=2.0),))
    assert [e.kind for e in plan(plain, already_written=10)[0]] == ["apply", "write", "remove"]


def test_an_isr_shrink_meets_writes_every_second_of_its_window() -> None:
    shrink = Step("during", KafkaIsrShrunk(), at=1.0, duration=4.5)
    scenario = Scenario(name="p", description="d", steps=(shrink,), during_s=6.0,
                        workload=Workload(records=10, chunk=10, before_fraction=1.0, meet_faults=7)).validate()
    events, _end = plan(scenario, already_written=10)
    assert [(e.kind, e.at) for e in events if e.kind == "write"] == [("write", t) for t in (1.0, 2.0, 3.0, 4.0, 5.0)]


def test_plan_stretches_to_the_last_window_and_writes_nothing_when_the_workload_is_done() -> None:
    scenario = Scenario(name="p", description="d", steps=(Step("during", LinkDown("redis"), at=9.0, duration=4.0),),
                        workload=Workload(records=10), during_s=5.0)
    events, end = plan(scenario, already_written=10)
    assert end == 13.0
    assert [e.kind for e in events] == ["apply", "remove"]


# -- the judge's rules ---------------------------------------------------------------------------------
def _seen(delivered_ids: list[int], letters: int = 0) -> SinkContents:
    sink = [SinkRecord(i, "x", b"x", f"topic:0:{n}") for n, i in enumerate(delivered_ids)]
    return SinkContents(sink, [DeadLetterRecord(str(i), "too_large", "", "deliver", b"x") for i in range(letters)])


@pytest.mark.parametrize(("counted", "ids", "restarted", "ok"), [
    (3, [1, 2, 3], False, True),
    (4, [1, 2, 3, 3], False, True),  # a send reported failed that landed, retried: a duplicate
    (2, [1, 2, 3], False, False),  # something reached the sink that the exporter never confirmed
    (5, [1, 2, 3, 3], False, False),  # counted a delivery that never happened
    (1, [1, 2, 3], True, True),  # after a restart the counters start again: only the upper bound holds
    (5, [1, 2, 3], True, False),
])
def test_metrics_agree_bounds(counted: int, ids: list[int], restarted: bool, ok: bool) -> None:
    counters = MetricsSnapshot(counted, 0, len(ids), 0, 2 if restarted else 1)
    seen = _seen(ids)
    check = metrics_agree(counters, seen.sink, seen.letters, restarted)
    assert check.ok is ok, check.detail
    assert f"delivered counter {counted}" in check.detail


def test_dead_letter_counter_below_the_letters_is_a_violation() -> None:
    seen = _seen([1, 2], letters=1)
    check = metrics_agree(MetricsSnapshot(2, 0, 2, 1, 1), seen.sink, seen.letters, restarted=False)
    assert not check.ok and "dead-lettered counter 0 vs 1 distinct" in check.detail


def test_checkpoints_fail_only_on_corruption_or_strangers() -> None:
    def point(at: float, corrupted: int = 0, missing: int = 0) -> CheckpointPoint:
        return CheckpointPoint(at, 10, True, 0.1, missing, [], [], 0, corrupted, 0, False)

    def checkpoint_checks(points: list[CheckpointPoint]) -> list:
        return registered_checks()["checkpoints"].judge(Evidence(Expect(), frozenset(), "t", checkpoints=points))

    assert checkpoint_checks([]) == []
    lagging = checkpoint_checks([point(1.0, missing=4), point(2.0)])[0]
    assert lagging.ok and "most records not yet settled at one: 4" in lagging.detail
    corrupt = checkpoint_checks([point(1.0), point(2.0, corrupted=1)])[0]
    assert not corrupt.ok and "t=[2.0]" in corrupt.detail


def _write(directory: Path, *results: ScenarioResult) -> Path:
    directory.mkdir()
    verdict = Verdict.FAIL if any(r.verdict is Verdict.FAIL for r in results) else Verdict.PASS
    (directory / "report.json").write_text(RunReport(run_id=directory.name, target="t.toml", backend="local",
                                                     verdict=verdict, duration_s=1.0,
                                                     scenarios=list(results)).to_json())
    return directory


def _held(name: str, recovery: float) -> ScenarioResult:
    return ScenarioResult(name, "d", None, verdict=Verdict.PASS, recovery_s=recovery)


def test_compare_fails_on_a_regression_and_shows_every_repeat_round(tmp_path: Path) -> None:
    before = _write(tmp_path / "a", _held("lossy", 1.0), _held("lossy", 1.2), _held("slow", 1.0))
    failed = ScenarioResult("lossy", "d", None, verdict=Verdict.FAIL, checks=[Check("no_loss", False, "3 lost")])
    after = _write(tmp_path / "b", _held("lossy", 1.0), failed, _held("slow", 5.0))

    def faultline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", "compare", *args], capture_output=True,
                              text=True, timeout=60, check=False)

    done = faultline(str(before), str(after), "--fail-on", "regression")
    assert done.returncode == 1, done.stderr
    text = " ".join(done.stderr.split())
    assert "lossy: pass/pass -> pass/fail (no_loss)" in text
    assert "slow: recovery 1.0s -> 5.0s (more than 2.0x)" in text
    assert faultline(str(before), str(after)).returncode == 0  # without --fail-on it only reports
    assert faultline(str(before), str(before), "--fail-on", "regression").returncode == 0
    assert faultline(str(before), str(after), "--fail-on", "regression", "--recovery-factor", "nan").returncode == 2


def test_keep_on_failure_holds_the_stack_only_when_the_gate_did_not_pass() -> None:
    from harness.play.gate import EXIT_HARNESS, EXIT_OK, EXIT_VIOLATION, should_keep

    assert [should_keep("on_failure", c) for c in (EXIT_OK, EXIT_VIOLATION, EXIT_HARNESS)] == [False, True, True]
    assert should_keep("always", EXIT_OK) and not should_keep("never", EXIT_VIOLATION)


def _with_changes(counts: dict[str, int]) -> RunReport:
    from harness.report.findings import ChangeSummary

    report = _report()
    report.scenarios[0].changes = ChangeSummary(ok=not counts, written=10, committed=12, counts=counts,
                                                samples={c: ["row 7: source v1 v2 del; sink v1 v2"] for c in counts})
    return report


def test_changes_round_trip_render_and_count_in_compare(tmp_path: Path) -> None:
    from harness.report.compare import compare, regressions
    from harness.report.html_report import render

    path = tmp_path / "report.json"
    path.write_text(_with_changes({"delete_lost": 2}).to_json())
    back = read_report(path)
    assert back.scenarios[0].changes is not None and back.scenarios[0].changes.counts == {"delete_lost": 2}
    assert "row 7: source v1 v2 del; sink v1 v2" in render(back) and "<h4>delete_lost</h4>" in render(back)
    rows = compare(_with_changes({"delete_lost": 1}), back)
    assert regressions(rows, 2.0) == ["lossy: more change anomalies (delete_lost 1 -> 2)"]
    assert regressions(compare(back, _with_changes({"delete_lost": 1})), 2.0) == []


def test_a_schema_1_report_is_still_read(tmp_path: Path) -> None:
    raw = json.loads(_report().to_json())
    raw["schema"] = 1
    for scenario in raw["scenarios"]:
        del scenario["changes"]  # what schema 1 never had
    path = tmp_path / "report.json"
    path.write_text(json.dumps(raw))
    assert read_report(path).scenarios[0].changes is None
