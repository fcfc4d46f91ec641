"""What a run writes to ``reports/<run-id>/``: report.json, junit.xml (one case per invariant) and summary.md."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.html_report import render
from harness.runner import ScenarioResult

SUMMARY_LIMIT = 1_000_000  # CI step summaries refuse more than 1 MiB


def write_all(out: Path, run: dict[str, Any], results: list[ScenarioResult]) -> list[str]:
    """Every report that can be written is: one that fails (a full disk, a bug in a renderer) is
    named in the others (``report_errors``) instead of costing them. Returns the problems."""
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = [str(p) for p in run.get("report_errors", [])]

    def attempt(name: str, write: Callable[[], object]) -> None:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - recorded in the reports that could be written
            problems.append(f"{name} not written: {exc.__class__.__name__}: {exc}")

    def report_json() -> None:
        (out / "report.json").write_text(json.dumps({**run, "report_errors": problems,
                                                     "scenarios": [r.to_dict() for r in results]},
                                                    indent=2, default=str) + "\n")

    attempt("junit.xml", lambda: write_junit(out / "junit.xml", results))
    attempt("summary.md", lambda: (out / "summary.md").write_text(
        summary_markdown({**run, "report_errors": problems}, results)[:SUMMARY_LIMIT]))
    attempt("report.json", report_json)
    attempt("report.html", lambda: write_html(out))
    if problems and (out / "report.json").exists():
        report_json()  # the HTML's problem too, if it had one
    return problems


def write_html(out: Path) -> Path:
    """(Re)generate report.html from report.json: ``faultline report RUN_DIR`` calls this too."""
    source = out / "report.json"
    if not source.exists():
        raise HarnessError(f"{out} holds no report.json; point at a directory a run wrote")
    try:
        report = json.loads(source.read_text())
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{source} is not valid JSON: {exc}") from exc
    target = out / "report.html"
    target.write_text(render(report))
    return target


def write_junit(path: Path, results: list[ScenarioResult]) -> None:
    suites = ET.Element("testsuites", name="faultline")
    for result in results:
        suite = ET.SubElement(suites, "testsuite", name=result.name, tests=str(max(1, len(result.checks))),
                              failures=str(len(result.violations)), errors="1" if result.verdict == "error" else "0",
                              time=f"{result.duration_s:.3f}")
        if result.verdict == "error":
            case = ET.SubElement(suite, "testcase", classname=f"faultline.{result.name}", name="harness")
            ET.SubElement(case, "error", message=result.error or "harness error").text = result.error
        if result.verdict == "skipped":
            case = ET.SubElement(suite, "testcase", classname=f"faultline.{result.name}", name="backend")
            ET.SubElement(case, "skipped", message=result.error or "skipped")
        for check in result.checks:
            case = ET.SubElement(suite, "testcase", classname=f"faultline.{result.name}", name=check.name)
            if not check.ok:
                ET.SubElement(case, "failure", message=check.detail[:500]).text = check.detail
            else:
                ET.SubElement(case, "system-out").text = check.detail
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def summary_markdown(run: dict[str, Any], results: list[ScenarioResult]) -> str:
    icon = {"pass": "✅ pass", "fail": "❌ fail", "error": "⚠️ error", "skipped": "⏭️ skipped"}
    lines = [f"# Faultline run {run['run_id']}: {run['verdict']}", "",
             f"Target `{run['target']}`, backend `{run['backend']}`, {len(results)} scenario(s), "
             f"{run['duration_s']:.1f}s.", "", "| scenario | verdict | lost | corrupted | dead-lettered | duplicates | "
             "duration |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        counts = r.ledger.get("counts", {})
        cells = [r.name, icon[r.verdict], counts.get("lost", 0), counts.get("delivered_corrupted", 0),
                 counts.get("dead_lettered", 0), r.ledger.get("duplicates", 0), f"{r.duration_s:.1f}s"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for r in results:
        for load in r.load:
            lines += ["", f"**{r.name}**: Locust {load['kind']} load, {load['users']} users", "",
                      "| request | count | failures | req/s | p50 ms | p99 ms |",
                      "| --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {q['name']} | {q['requests']} | {q['failures']} | {q['rps']} | {q['p50_ms']} "
                      f"| {q['p99_ms']} |" for q in load["requests"]]
        leaks = [t for t in r.resources.get("trends", []) if t["leak"]]
        if r.resources.get("trends"):
            lines += ["", f"**{r.name}** resources: " + ("leak in " + ", ".join(
                f"{t['quantity']} ({t['slope_per_min']:+}/min)" for t in leaks) if leaks else "no leak trend")]
        if r.interrupted:
            lines += ["", f"**{r.name}** was interrupted (Ctrl-C); healed, reconciled and reported."]
    if run.get("report_errors"):
        lines += ["", "## Report problems", "", *(f"- {p}" for p in run["report_errors"])]
    failing = [r for r in results if r.verdict != "pass"]
    if failing:
        lines += ["", "## First violations", ""]
        for r in failing:
            if r.error:
                label = "skipped" if r.verdict == "skipped" else "harness error"
                lines.append(f"- **{r.name}**: {label}: {r.error}")
            for check in r.violations[:5]:
                lines.append(f"- **{r.name}** `{check.name}`: {check.detail}")
    return "\n".join(lines) + "\n"
