"""Reproduction rates measured on the real stack: `reproduce --repeat` prints and records them,
the out-of-order-commit scenario fails its seeded defect every time, and the shipped incident
files meet the rates they state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.catalogue import incident
from harness.catalogue.registry import discover
from harness.paths import project_root

pytestmark = pytest.mark.faultline
SHIPPED = sorted((project_root() / "incidents").glob("*.toml"))


def said(proc: subprocess.CompletedProcess) -> str:
    """What the command printed (the console writes to stderr), its line wrapping undone."""
    return " ".join((proc.stdout + proc.stderr).split())


def faultline(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"}, check=False)


# Slow (37 s), like the rest of this file; the gate's replays and their rates are unit-tested.
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_reproduce_repeat_prints_and_records_the_rate(tmp_path: Path) -> None:
    # A defect that loses at the sink: the drain ends at once (one losing at the source waits out
    # the rows it never read, and this test is about what reproduce prints and records).
    path = incident.write(discover()["kafka_send_failures"], tmp_path / "ksf.toml", comment="Swallowed.\nKept.")
    proc = faultline("reproduce", str(path), "--repeat", "2", "--defect", "ack_before_send", "--record",
                     "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, said(proc)[-3000:]
    assert "failed 2/2: the incident reproduces every time" in said(proc)
    recorded = incident.load(path)
    assert recorded.reproduction is not None
    assert recorded.reproduction.rate == "2/2" and "no_loss" in recorded.reproduction.violates
    assert recorded.reproduction.defect == "ack_before_send"
    assert recorded.reproduction.servers["postgres"].startswith("15")
    assert path.read_text().startswith("# Swallowed.\n# Kept.\n")  # the person's comment stays


def test_an_unknown_defect_is_refused_before_anything_starts(tmp_path: Path) -> None:
    path = incident.write(discover()["baseline"], tmp_path / "b.toml")
    proc = faultline("reproduce", str(path), "--defect", "no_such_bug", timeout=60)
    assert proc.returncode == 2
    assert "no_such_bug" in said(proc) and "read_past_open_transactions" in said(proc)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("defect", "expected"), [("read_past_open_transactions", "fail:no_loss"), ("", "pass:")])
def test_out_of_order_commits_fails_the_defect_and_passes_the_clean_exporter_10_of_10(
        tmp_path: Path, defect: str, expected: str) -> None:
    env_defect = ["--defect", defect] if defect else []
    path = incident.write(discover()["out_of_order_commits"], tmp_path / "ooc.toml")
    proc = faultline("reproduce", str(path), "--repeat", "10", *env_defect, "--out", str(tmp_path / "out"),
                     timeout=1150)
    assert proc.returncode == (1 if defect else 0), said(proc)[-3000:]
    assert ("failed 10/10" if defect else "failed 0/10") in said(proc)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_incident_meets_its_stated_reproduction_rate(tmp_path: Path, path: Path) -> None:
    stated = incident.load(path).reproduction
    assert stated is not None, f"{path.name} states no reproduction rate"
    defect = ["--defect", stated.defect] if stated.defect else []
    proc = faultline("reproduce", str(path), "--repeat", str(stated.runs), *defect, "--out", str(tmp_path),
                     timeout=850)
    assert f"failed {stated.rate}" in said(proc), said(proc)[-3000:]
    assert proc.returncode == (1 if stated.failed else 0)


def test_every_shipped_incident_states_a_full_reproduction_rate() -> None:
    for path in SHIPPED:
        stated = incident.load(path).reproduction
        assert stated is not None, f"{path.name} states no [reproduction]"
        # Every repeat the same way: either always caught (with its defect) or always held.
        assert stated.failed in (0, stated.runs) and stated.runs >= 5, f"{path.name}: {stated.rate}"
        assert stated.faultline_version and stated.target and stated.servers and stated.measured_at


@pytest.mark.timeout(200)
def test_writes_that_meet_the_faults_land_inside_each_window(tmp_path: Path) -> None:
    from harness.scenario import Expect, LinkDown, Scenario, Step, Workload

    scenario = Scenario(name="met", description="two short outages, data written into each",
                        workload=Workload(records=20, chunk=20, before_fraction=1.0, meet_faults=7),
                        steps=(Step("during", LinkDown("kafka"), at=0.5, duration=0.6),
                               Step("during", LinkDown("redis"), at=2.0, duration=0.6)),
                        expect=Expect(metrics_agree=False), during_s=3.0)
    path = incident.write(scenario, tmp_path / "met.toml")
    proc = faultline("reproduce", str(path), "--out", str(tmp_path / "out"), timeout=190)
    assert proc.returncode == 0, said(proc)[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())["scenarios"][0]
    # Every record of the workload went before the faults: only the anchored writes meet them.
    assert [s["written_during"] for s in report["steps"]] == [7, 7]
    assert report["ledger"]["writes"]["ok"] == 20 + 2 * 7
