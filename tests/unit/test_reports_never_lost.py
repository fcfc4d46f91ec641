"""A report that cannot be written costs only itself: the others are written and name the problem."""

from __future__ import annotations

import json
from pathlib import Path

from harness.model.target import TargetDefinition
from harness.play.gate import write_incidents
from harness.report import html_report
from harness.report.journal import Check
from harness.report.reports import write_all
from harness.report.result import RunReport, ScenarioResult, Verdict
from harness.scenario import LinkDown, Scenario, Step


def run_report(*scenarios: ScenarioResult) -> RunReport:
    return RunReport(run_id="r1", target="targets/bundled-exporter.toml", backend="local", verdict=Verdict.FAIL,
                     duration_s=1.0, scenarios=list(scenarios))


def failing(name: str = "demo") -> ScenarioResult:
    return ScenarioResult(name, "d", None, verdict="fail", checks=[Check("no_loss", False, "3 lost [incident]")])


def test_a_section_that_cannot_be_drawn_leaves_the_rest_of_the_html(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    real = html_report._scenario_section

    def section(sc: ScenarioResult) -> str:
        if sc.name == "broken":
            raise ValueError("a chart this version cannot draw")
        return real(sc)

    monkeypatch.setattr(html_report, "_scenario_section", section)
    problems = write_all(tmp_path, run_report(failing("fine"), failing("broken")))
    html = (tmp_path / "report.html").read_text()
    assert 'id="scenario-fine"' in html and "This section could not be drawn" in html
    assert problems == []  # the HTML was written; only one section is a placeholder
    assert json.loads((tmp_path / "report.json").read_text())["scenarios"][1]["name"] == "broken"


def test_a_report_that_cannot_be_written_is_named_in_the_others(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").mkdir()  # junit.xml cannot be written over a directory
    problems = write_all(tmp_path, run_report(failing()))
    assert len(problems) == 1 and problems[0].startswith("junit.xml not written: IsADirectoryError")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["report_errors"] == problems
    assert "junit.xml not written" in (tmp_path / "summary.md").read_text()
    assert "junit.xml not written" in (tmp_path / "report.html").read_text()


def test_an_incident_file_that_cannot_be_written_is_recorded_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "incidents"
    blocker.write_text("a file where the directory should be")
    scenario = Scenario(name="demo", description="d", steps=(Step("during", LinkDown("kafka"), duration=1.0),))
    result = failing()
    written = write_incidents(blocker, [scenario], [result], TargetDefinition.load())
    assert written == []
    assert len(result.report_errors) == 1 and "incident file for demo not written" in result.report_errors[0]


def test_brackets_in_messages_reach_the_summary_as_written(tmp_path: Path) -> None:
    write_all(tmp_path, run_report(failing()))
    assert "3 lost [incident]" in (tmp_path / "summary.md").read_text()


def test_every_violating_id_is_written_beside_the_report_and_the_names_are_in_it(tmp_path: Path) -> None:
    result = failing()
    result.names = {"namespace": "s_demo_1", "kafka_topic": "s_demo_1-out"}
    result.violation_ids = {"lost": list(range(1, 26))}  # more than the ledger's ten samples
    write_all(tmp_path, run_report(result))
    assert json.loads((tmp_path / "ids" / "demo.json").read_text()) == {"lost": list(range(1, 26))}
    scenario = json.loads((tmp_path / "report.json").read_text())["scenarios"][0]
    assert scenario["names"]["kafka_topic"] == "s_demo_1-out" and "violation_ids" not in scenario
