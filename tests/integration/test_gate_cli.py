"""`faultline run` end to end: reports, exit codes, and a seeded defect caught with ids and hop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.faultline


def faultline(*args: str, env: dict[str, str] | None = None, timeout: float = 170) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_clean_run_writes_all_three_reports_and_exits_0(tmp_path: Path) -> None:
    result = faultline("run", "baseline", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "pass"
    (scenario,) = report["scenarios"]
    assert scenario["ledger"]["counts"] == {"delivered_intact": 400}
    assert scenario["metrics"]["delivered"] == 400
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall(".//testcase")
    assert {"no_loss", "no_corruption", "metrics_agree"} <= {c.get("name") for c in cases}
    assert not ET.parse(tmp_path / "junit.xml").getroot().findall(".//failure")
    assert "| baseline | ✅ pass |" in (tmp_path / "summary.md").read_text()


def test_seeded_defect_from_the_environment_is_caught_with_lost_ids_and_hop(tmp_path: Path) -> None:
    result = faultline("run", "kafka_send_failures", "--out", str(tmp_path),
                       env={"FAULTLINE_EXPORTER_DEFECT": "ack_before_send"})
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    checks = {c["name"]: c for c in report["scenarios"][0]["checks"]}
    assert not checks["no_loss"]["ok"]
    assert "lost; ids [" in checks["no_loss"]["detail"]
    assert "buffer->sink" in checks["no_loss"]["detail"]
    assert report["scenarios"][0]["ledger"]["samples"]["lost"]
    assert ET.parse(tmp_path / "junit.xml").getroot().findall(".//failure")
    assert "First violations" in (tmp_path / "summary.md").read_text()


def test_unknown_scenario_is_a_harness_error_exit_2() -> None:
    result = faultline("run", "no_such_scenario")
    assert result.returncode == 2
    assert "unknown scenario(s) no_such_scenario" in result.stderr
