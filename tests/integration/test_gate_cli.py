"""`faultline run` end to end: reports (JSON, JUnit, Markdown, HTML in a real browser), exit
codes, a seeded defect caught with ids and hop, and `compare` between the two runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.faultline
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def faultline(*args: str, env: dict[str, str] | None = None, timeout: float = 170) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@dataclass
class Runs:
    clean: Path
    defect: Path
    clean_result: subprocess.CompletedProcess
    defect_result: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("runs")
    # Both play their two scenarios side by side (-j 2; -j 1 in turn: the --fail-fast test below).
    clean = faultline("run", "baseline", "kafka_send_failures", "--out", str(base / "clean"), "-j", "2")
    defect = faultline("run", "baseline", "kafka_send_failures", "--out", str(base / "defect"), "--replays", "1",
                       "-j", "2", env={"FAULTLINE_EXPORTER_DEFECT": "ack_before_send"}, timeout=240)
    return Runs(base / "clean", base / "defect", clean, defect)


def _violations(run_dir: Path) -> list[str]:
    report = json.loads((run_dir / "report.json").read_text())
    return [f"{s['name']}: {c['name']}: {c['detail']}" for s in report["scenarios"] for c in s["checks"]
            if not c["ok"]] + [f"{s['name']}: {s['error']}" for s in report["scenarios"] if s.get("error")]


def test_clean_run_writes_every_report_and_exits_0(runs: Runs) -> None:
    assert runs.clean_result.returncode == 0, _violations(runs.clean) or runs.clean_result.stderr
    report = json.loads((runs.clean / "report.json").read_text())
    assert report["verdict"] == "pass"
    baseline = report["scenarios"][0]
    assert baseline["ledger"]["counts"] == {"delivered_intact": 400}
    assert baseline["metrics"]["delivered"] == 400
    cases = ET.parse(runs.clean / "junit.xml").getroot().findall(".//testcase")
    assert {"no_loss", "no_corruption", "metrics_agree"} <= {c.get("name") for c in cases}
    assert not ET.parse(runs.clean / "junit.xml").getroot().findall(".//failure")
    assert "| baseline | ✅ pass |" in (runs.clean / "summary.md").read_text()
    assert (runs.clean / "summary.md").stat().st_size < 1_000_000
    # -j 2: each scenario on a stack of its own, at the same time, and the report says so.
    assert report["jobs"] == 2 and report["jobs_why"] == "asked for (-j 2)"
    assert sorted(s["stack"] for s in report["scenarios"]) == [1, 2]
    assert report["beside"] == {"baseline": ["kafka_send_failures"], "kafka_send_failures": ["baseline"]}
    assert "Played on 2 stacks side by side (asked for (-j 2))" in (runs.clean / "summary.md").read_text()
    # Private: the work directory (logs, exports, the exporter's tokens) and every file in it.
    work = runs.clean / "work"
    assert work.stat().st_mode & 0o777 == 0o700
    shared = [p for p in work.rglob("*") if p.stat().st_mode & 0o077 and not p.is_symlink()]
    assert shared == [], shared[:5]
    said = runs.clean_result.stdout + runs.clean_result.stderr
    assert "judged 2 of 2 scenario(s): 2 held, 0 failed" in " ".join(said.split())


def test_seeded_defect_from_the_environment_is_caught_with_lost_ids_and_hop(runs: Runs) -> None:
    assert runs.defect_result.returncode == 1, runs.defect_result.stderr
    report = json.loads((runs.defect / "report.json").read_text())
    verdicts = {s["name"]: s["verdict"] for s in report["scenarios"]}
    assert verdicts == {"baseline": "pass", "kafka_send_failures": "fail"}
    assert report["jobs"] == 2 and sorted(s["stack"] for s in report["scenarios"]) == [1, 2]
    # What ran beside the failure, where to look first if it is suspected of being its neighbour's.
    assert "- kafka_send_failures (stack " in (runs.defect / "summary.md").read_text()
    checks = {c["name"]: c for c in report["scenarios"][1]["checks"]}
    assert not checks["no_loss"]["ok"]
    assert "lost; ids [" in checks["no_loss"]["detail"] and "buffer->sink" in checks["no_loss"]["detail"]
    assert ET.parse(runs.defect / "junit.xml").getroot().findall(".//failure")
    assert "First violations" in (runs.defect / "summary.md").read_text()
    # Replayed once before it was written up: the rate is in the result, the file and the terminal.
    assert report["scenarios"][1]["replayed"] == "1/1"
    printed = runs.defect_result.stdout + runs.defect_result.stderr
    assert "kafka_send_failures reproduces 1/1 replays after it failed" in printed
    written = (runs.defect / "incidents" / "kafka_send_failures.toml").read_text()
    assert 'reproduced = "1/1"' in written and "reproduces 1/1 replays after it failed" in written
    story = report["scenarios"][1]["loss_story"]  # how the first lost record was lost
    assert story["hop"].startswith("buffer->sink") and any("written" in e for e in story["events"])


def test_compare_shows_the_changed_verdict(runs: Runs) -> None:
    result = faultline("compare", str(runs.clean), str(runs.defect), "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["scenario"]: row for row in json.loads(result.stdout)}
    assert rows["kafka_send_failures"]["verdict_changed"] is True
    assert (rows["kafka_send_failures"]["verdict_a"], rows["kafka_send_failures"]["verdict_b"]) == ("pass", "fail")
    assert rows["baseline"]["verdict_changed"] is False
    assert "no_loss" in rows["kafka_send_failures"]["violations_b"]
    assert "kafka link down" in rows["kafka_send_failures"]["throughput_under_fault"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium; .ci/run installs it)")
def test_report_html_opens_offline_in_chromium_with_charts_windows_and_lost_ids(runs: Runs) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    html = runs.defect / "report.html"
    assert html.exists()
    report = json.loads((runs.defect / "report.json").read_text())
    lost = report["scenarios"][1]["ledger"]["samples"]["lost"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.as_uri())
            page.screenshot(path=str(runs.defect / "report.png"), full_page=True)
            assert errors == []
            assert all(url.startswith("file://") for url in requests), requests  # self-contained, offline
            for name in ("baseline", "kafka_send_failures"):
                assert page.locator(f"#scenario-{name} svg.chart").count() == 4
            windows = page.locator("#scenario-kafka_send_failures rect.fault-window")
            assert windows.count() == 2 * 4  # two fault steps, shaded on each of the four charts
            assert windows.first.get_attribute("data-label") == "kafka link down"
            lost_table = page.locator("#scenario-kafka_send_failures table.lost").inner_text()
            assert str(lost[0]) in lost_table and "buffer->sink" in lost_table
            assert page.locator("#summary").inner_text().count("fail") >= 1
        finally:
            browser.close()
    assert (runs.defect / "report.png").stat().st_size > 10_000


def test_unknown_scenario_is_a_harness_error_exit_2() -> None:
    result = faultline("run", "no_such_scenario")
    assert result.returncode == 2
    assert "unknown scenario(s) no_such_scenario" in result.stderr


def test_report_of_a_directory_without_a_run_is_exit_2(tmp_path: Path) -> None:
    result = faultline("report", str(tmp_path))
    assert result.returncode == 2 and "holds no report.json" in result.stderr


def test_a_failing_run_writes_an_incident_file_that_reproduces_the_violation(runs: Runs, tmp_path: Path) -> None:
    written = runs.defect / "incidents" / "kafka_send_failures.toml"
    assert written.exists()
    assert not (runs.defect / "incidents" / "baseline.toml").exists()  # only failing scenarios are written
    text = written.read_text()
    assert 'FAULTLINE_EXPORTER_DEFECT = "ack_before_send"' in text and "violated no_loss" in text
    env = {k: v for k, v in os.environ.items() if k != "FAULTLINE_EXPORTER_DEFECT"}
    replay = subprocess.run([sys.executable, "-m", "harness.cli", "reproduce", str(written), "--out",
                             str(tmp_path / "replay")], capture_output=True, text=True, timeout=170, env=env)
    assert replay.returncode == 1, replay.stderr
    report = json.loads((tmp_path / "replay" / "report.json").read_text())
    assert "no_loss" in {c["name"] for c in report["scenarios"][0]["checks"] if not c["ok"]}


def test_fail_fast_stops_after_the_first_violation_and_reports_the_rest_not_started(tmp_path: Path) -> None:
    out = tmp_path / "x"
    # -j 1: in turn, so that baseline waits for kafka_send_failures and is never started.
    result = faultline("run", "-x", "-j", "1", "kafka_send_failures", "baseline", "--out", str(out),
                       env={"FAULTLINE_EXPORTER_DEFECT": "ack_before_send"})
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    verdicts = {s["name"]: (s["verdict"], s.get("skipped")) for s in report["scenarios"]}
    assert verdicts["kafka_send_failures"][0] == "fail"
    assert verdicts["baseline"] == ("skipped", "not started: --fail-fast stopped the run after kafka_send_failures "
                                               "failed")
    assert "1 scenario(s) not started after the first violation" in result.stderr  # the console is stderr
    assert not (out / "work" / "replays").exists()  # a quick red: the failure is not replayed
    assert report["jobs"] == 1 and report["beside"] == {} and {s["stack"] for s in report["scenarios"]} == {1}
