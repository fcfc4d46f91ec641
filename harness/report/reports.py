"""What a run writes to ``reports/<run-id>/``: report.json, junit.xml (one case per invariant) and summary.md."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from harness.report import explore_report
from harness.report.html_report import render
from harness.report.report_file import read_report
from harness.report.result import RunReport, ScenarioResult, Verdict, failures_first

SUMMARY_LIMIT = 1_000_000  # CI step summaries refuse more than 1 MiB


def write_all(out: Path, report: RunReport) -> list[str]:
    """Every report that can be written is: one that fails (a full disk, a bug in a renderer) is
    named in the others (``report_errors``) instead of costing them. Returns the problems."""
    out.mkdir(parents=True, exist_ok=True)
    problems = report.report_errors  # the run's own (incident files not written) come first

    def attempt(name: str, write: Callable[[], object]) -> None:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - recorded in the reports that could be written
            problems.append(f"{name} not written: {exc.__class__.__name__}: {exc}")

    def report_json() -> None:
        (out / "report.json").write_text(report.to_json())

    attempt("ids", lambda: write_violation_ids(out / "ids", report.scenarios))
    attempt("junit.xml", lambda: write_junit(out / "junit.xml", report.scenarios))
    attempt("summary.md", lambda: (out / "summary.md").write_text(summary_markdown(report)[:SUMMARY_LIMIT]))
    attempt("report.json", report_json)
    attempt("report.html", lambda: (out / "report.html").write_text(render(report)))
    if problems and (out / "report.json").exists():
        report_json()  # the HTML's problem too, if it had one
    return problems


def write_violation_ids(directory: Path, results: list[ScenarioResult]) -> None:
    """Every lost, misrouted and corrupted record id of each scenario (report.json keeps ten)."""
    for n, result in enumerate(results):
        if result.violation_ids:
            directory.mkdir(parents=True, exist_ok=True)
            suffix = f"-{n}" if sum(r.name == result.name for r in results) > 1 else ""  # repeat rounds
            (directory / f"{result.name}{suffix}.json").write_text(json.dumps(result.violation_ids) + "\n")


def write_html(out: Path) -> Path:
    """(Re)generate report.html from report.json: ``faultline report RUN_DIR`` calls this."""
    report = read_report(out / "report.json")
    target = out / "report.html"
    target.write_text(render(report))
    return target


def write_junit(path: Path, results: list[ScenarioResult]) -> None:
    suites = ET.Element("testsuites", name="faultline")
    for result in results:
        errored = result.verdict is Verdict.ERROR
        suite = ET.SubElement(suites, "testsuite", name=result.name, tests=str(max(1, len(result.checks))),
                              failures=str(len(result.violations)), errors="1" if errored else "0",
                              time=f"{result.duration_s:.3f}")
        if result.verdict is Verdict.ERROR:
            case = ET.SubElement(suite, "testcase", classname=f"faultline.{result.name}", name="harness")
            ET.SubElement(case, "error", message=result.error or "harness error").text = result.error
        if result.verdict is Verdict.SKIPPED:
            case = ET.SubElement(suite, "testcase", classname=f"faultline.{result.name}", name="backend")
            ET.SubElement(case, "skipped", message=result.skipped or "skipped")
        for check in result.checks:
            case = ET.SubElement(suite, "testcase", classname=f"faultline.{result.name}", name=check.name)
            if not check.ok:
                ET.SubElement(case, "failure", message=check.detail[:500]).text = check.detail
            elif not check.applicable:
                ET.SubElement(case, "skipped", message=check.detail[:500])
            else:
                ET.SubElement(case, "system-out").text = check.detail
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


ICON = {Verdict.PASS: "✅ pass", Verdict.FAIL: "❌ fail", Verdict.ERROR: "⚠️ error", Verdict.SKIPPED: "⏭️ skipped"}


def summary_markdown(report: RunReport) -> str:
    results = failures_first(report.scenarios)
    lines = [f"# Faultline run {report.run_id}: {report.verdict}", "",
             f"Target `{report.target}`, backend `{report.backend}`, {len(results)} scenario(s), "
             f"{report.duration_s:.1f}s.", *_side_by_side(report), *_first_violations(results)]
    if report.explore is not None and report.explore.failures:
        lines += ["", "## Explore failures", "", *explore_report.failure_lines(report.explore)]
    lines += ["", "| scenario | verdict | lost | corrupted | dead-lettered | duplicates | out of order | duration |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ledger = r.ledger
        counts: list[object] = ["-"] * 5 if ledger is None else [
            ledger.count("lost"), ledger.count("delivered_corrupted"), ledger.count("dead_lettered"),
            ledger.duplicates, ledger.order_inversions]
        cells = [r.name, ICON[r.verdict], *counts, f"{r.duration_s:.1f}s"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for r in results:
        lines += _scenario_details(r)
    if report.explore is not None:
        lines += explore_report.markdown(report.explore)
    if report.report_errors:
        lines += ["", "## Report problems", "", *(f"- {p}" for p in report.report_errors)]
    for r in results:
        for loss in r.failover_losses:
            if loss.lost:
                lines += ["", f"- **{r.name}**: {loss.lost} of {loss.lost_total} lost records were written around "
                              f"the {loss.server} failover ({loss.step}): {loss.evidence}"]
        if r.loss_story is not None:
            story = r.loss_story
            lines += ["", f"## How record {story.record_id} of {r.name} was lost ({story.hop})", "", "```",
                      *story.events, *([f"... {story.more} more"] if story.more else []), "```"]
    return "\n".join(lines) + "\n"


def _side_by_side(report: RunReport) -> list[str]:
    """How many stacks the run played on, why, and what ran beside each failure (where to look
    first if a failure is suspected of being its neighbour's)."""
    if report.jobs <= 1:
        return []
    lines = ["", f"Played on {report.jobs} stacks side by side ({report.jobs_why}), each scenario on a stack "
                 "of its own."]
    for r in failures_first(report.scenarios):
        if r.verdict in (Verdict.FAIL, Verdict.ERROR) and report.beside.get(r.name):
            lines.append(f"- {r.name} (stack {r.stack}) ran beside {', '.join(report.beside[r.name])}")
    return lines


def _first_violations(results: list[ScenarioResult]) -> list[str]:
    """Right under the title: what did not pass, and why (before any table of what held)."""
    failing = [r for r in results if r.verdict is not Verdict.PASS]
    if not failing:
        return []
    lines = ["", "## First violations", ""]
    for r in failing:
        if r.reason:
            label = "skipped" if r.verdict is Verdict.SKIPPED else "harness error"
            lines.append(f"- **{r.name}**: {label}: {r.reason}")
        if r.rate_said:
            lines.append(f"- **{r.name}** {r.rate_said} replays after it failed")
        for check in r.violations[:5]:
            lines.append(f"- **{r.name}** `{check.name}`: {check.detail}")
    return lines


def _scenario_details(r: ScenarioResult) -> list[str]:
    lines: list[str] = []
    for load in r.load:
        lines += ["", f"**{r.name}**: Locust {load.kind} load, {load.users} users", "",
                  "| request | count | failures | req/s | p50 ms | p99 ms |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {q.name} | {q.requests} | {q.failures} | {q.rps} | {q.p50_ms} | {q.p99_ms} |"
                  for q in load.requests]
    if r.resources is not None and r.resources.trends:
        leaks = r.resources.leaks
        lines += ["", f"**{r.name}** resources: " + ("leak in " + ", ".join(
            f"{t.quantity} ({t.slope_per_min:+}/min)" for t in leaks) if leaks else "no leak trend")]
    if r.ledger is not None and r.ledger.duplicates_by_window:
        lines += ["", f"**{r.name}** duplicates by the fault window they follow: " + ", ".join(
            f"{n} {window}" for window, n in r.ledger.duplicates_by_window.items())]
    if r.ledger is not None and r.ledger.inversion_samples:
        lines += ["", f"**{r.name}** out of source order ({r.ledger.order_inversions}):",
                  *(f"- {x}" for x in r.ledger.inversion_samples)]
    if r.interrupted:
        lines += ["", f"**{r.name}** was interrupted (Ctrl-C); healed, reconciled and reported."]
    return lines
