"""The gate replays a failure before writing it up: its rate goes into the result, the incident
file and the reports (the servers are simulated: ``run_on_stack`` is replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalogue import incident
from harness.catalogue.scenario import Expect, Scenario, Step, Workload
from harness.model.plugins import load_target
from harness.model.target import BUNDLED
from harness.play import gate
from harness.report.journal import Check
from harness.report.result import LedgerSummary, RunReport, ScenarioResult, Verdict
from harness.scenario import LinkDown

SCENARIO = Scenario(name="cut", description="d", workload=Workload(records=100),
                    steps=(Step("during", LinkDown("kafka"), at=1.0, duration=1.0),), expect=Expect())


def failed(checks: tuple[str, ...] = ("no_loss",), hop: str = "buffer->sink") -> ScenarioResult:
    return ScenarioResult("cut", "d", None, Verdict.FAIL, checks=[Check(c, False, "x") for c in checks],
                          ledger=LedgerSummary(lost_hops={"3": hop}))


def test_a_failure_is_replayed_once_per_scenario_and_its_rate_written(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    replies = iter([failed(), ScenarioResult("cut", "d", None, Verdict.PASS), failed(hop="source->buffer"),
                    failed(checks=("key_order",))])
    calls: list[int] = []

    def fake_run_on_stack(stack, target, scenarios, work, **_kw):  # noqa: ANN001, ANN202
        calls.append(len(scenarios))
        return [next(replies) for _ in scenarios]

    monkeypatch.setattr(gate, "run_on_stack", fake_run_on_stack)
    results = [failed(), failed()]  # two rounds of --repeat: measured once
    target = load_target(BUNDLED)
    gate.measure_failures(None, target, [SCENARIO], results, tmp_path, replays=4)  # type: ignore[arg-type]
    # Of four replays only the first failed the same way: a pass, another hop, another check.
    assert calls == [4] and [r.replayed for r in results] == ["1/4", "1/4"]
    assert results[0].rate_said == "reproduces 1/4"
    written = gate.write_incidents(tmp_path / "incidents", [SCENARIO], results[:1], target)
    back = incident.load(written[0])
    assert back.reproduction is not None and back.reproduction.rate == "1/4"
    assert "reproduces 1/4 replays after it failed" in written[0].read_text()
    from harness.report.reports import write_all

    write_all(tmp_path / "r", RunReport(run_id="r", target="t", backend="local", verdict=Verdict.FAIL, duration_s=1,
                                        scenarios=results[:1]))
    for name in ("summary.md", "report.html"):
        assert "reproduces 1/4" in (tmp_path / "r" / name).read_text(), name


def test_nothing_is_replayed_when_asked_for_none_or_nothing_failed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "run_on_stack", lambda *a, **k: pytest.fail("replayed"))
    passed = [ScenarioResult("cut", "d", None, Verdict.PASS)]
    gate.measure_failures(None, load_target(BUNDLED), [SCENARIO], passed, tmp_path, replays=3)  # type: ignore[arg-type]
    fails = [failed()]
    gate.measure_failures(None, load_target(BUNDLED), [SCENARIO], fails, tmp_path, replays=0)  # type: ignore[arg-type]
    assert passed[0].replayed == "" and fails[0].replayed == "" and fails[0].rate_said == ""
    written = gate.write_incidents(tmp_path / "incidents", [SCENARIO], fails, load_target(BUNDLED))
    assert incident.load(written[0]).reproduction.rate == "1/1"  # type: ignore[union-attr]
    assert "failed once, not replayed" in written[0].read_text()


def test_an_incident_file_names_the_failover_its_lost_records_fall_around(tmp_path: Path) -> None:
    from harness.report.findings import FailoverLoss

    result = failed()
    result.failover_losses = [FailoverLoss("kafka partition leader killed", "kafka", 6.3, 17.6, 1100, 1100,
                                           [1701, 1702], "broker 2 killed (high watermark 1700)"),
                              FailoverLoss("redis failed over", "redis", 1.0, 2.0, 0, 1100)]
    [written] = gate.write_incidents(tmp_path / "incidents", [SCENARIO], [result], load_target(BUNDLED))
    text = written.read_text()
    assert ("# lost around the kafka failover (kafka partition leader killed): 1100 of 1100, first ids "
            "[1701, 1702]; broker 2 killed (high watermark 1700)") in text
    assert "redis failover" not in text  # a failover that lost nothing is not named
    assert incident.load(written).name == "cut"  # the comment lines leave it a loadable incident file
