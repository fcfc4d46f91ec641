"""Where a person reads a run, what failed comes first (issue 29): report.html's summary, its
sections and a "what did not pass" list above them, summary.md's first lines and table, and the
terminal's table with a line per failure under it. An explore's 53 runs listed 52 passing ones
before its one failure, whose timeline section was the 53rd."""

from __future__ import annotations

import io

from rich.console import Console

from harness.cli import output
from harness.report import html_report
from harness.report.journal import Check
from harness.report.reports import summary_markdown
from harness.report.result import RunReport, ScenarioResult, Verdict, failures_first


def _results() -> list[ScenarioResult]:
    held = [ScenarioResult(f"held_{n}", "d", None, verdict=Verdict.PASS) for n in range(5)]
    broke = ScenarioResult("the_one_that_broke", "d", None, verdict=Verdict.FAIL,
                           checks=[Check("no_loss", False, "3 lost; ids [7, 8, 9]")])
    error = ScenarioResult("harness_trouble", "d", None, verdict=Verdict.ERROR, error="kafka did not start")
    return [*held[:3], broke, held[3], error, held[4]]


def _report() -> RunReport:
    return RunReport(run_id="r1", target="t.toml", backend="local", verdict=Verdict.FAIL, duration_s=1.0,
                     scenarios=_results())


def test_the_order_is_failed_errors_skipped_passed_and_run_order_within() -> None:
    names = [r.name for r in failures_first(_results())]
    assert names == ["the_one_that_broke", "harness_trouble", "held_0", "held_1", "held_2", "held_3", "held_4"]


def test_report_html_leads_with_what_did_not_pass() -> None:
    page = html_report.render(_report())
    first_list = page.index('id="first-violations"')
    assert first_list < page.index('id="summary"')
    assert page.index("no_loss: 3 lost", first_list) < page.index('id="summary"')
    summary = page[page.index('id="summary"'):]
    assert summary.index("the_one_that_broke") < summary.index("held_0")
    sections = page[page.index("</table>", page.index('id="summary"')):]
    assert sections.index('id="scenario-the_one_that_broke"') < sections.index('id="scenario-held_0"')


def test_summary_md_leads_with_what_did_not_pass() -> None:
    text = summary_markdown(_report())
    assert text.index("## First violations") < text.index("| scenario | verdict")
    table = text[text.index("| scenario | verdict"):]
    assert table.index("the_one_that_broke") < table.index("harness_trouble") < table.index("held_0")


def test_the_terminal_lists_failures_first_and_names_them_under_the_table(monkeypatch) -> None:  # noqa: ANN001
    buffer = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=buffer, width=200))
    output.console.print(output.results_table(_results()))
    output.print_what_failed(_results())
    text = buffer.getvalue()
    assert text.index("the_one_that_broke") < text.index("held_0")
    tail = text.splitlines()[-2:]
    assert tail[0].startswith("FAIL  the_one_that_broke: no_loss: 3 lost")
    assert tail[1].startswith("ERROR harness_trouble: kafka did not start")
