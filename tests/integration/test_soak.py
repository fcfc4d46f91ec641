"""``faultline soak`` end to end on the real stack, through the command a user runs.

Each step of the issue's chain is its own assertion: a soak with a seeded defect fails and
writes an incident file; ``reproduce`` fails the same way; ``shrink`` cuts it to at most three
fault steps that fail on every confirmation run and every replay. A clean short soak passes with
checkpoints and resource trends, and Ctrl-C heals, reconciles and still writes the report.
The soaks and the shrink take minutes: they carry the ``slow`` marker (``nox -s slow``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.catalogue import incident
from harness.infra.waiting import wait_for
from harness.scenario import is_fault

pytestmark = pytest.mark.faultline

# Seed 44 over 40 s draws an exporter freeze, a Postgres latency window and a 6.4 s Kafka link
# down, longer than the 1.5 s delivery timeout the exporter is given: sends fail during it.
DEFECT_SOAK = ["--duration", "40", "--seed", "44", "--rate", "40",
               "--faults", "kafka_down,redis_latency,postgres_latency,exporter_freeze",
               "--knob", "delivery_timeout_ms=1500"]
INCIDENT = "soak_seed44_40s.toml"


def said(proc: subprocess.CompletedProcess) -> str:
    """What the command printed (the console writes to stderr), its line wrapping undone."""
    return " ".join((proc.stdout + proc.stderr).split())


def faultline(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def violations(report_dir: Path) -> set[str]:
    report = json.loads((report_dir / "report.json").read_text())
    return {c["name"] for r in report["scenarios"] for c in r["checks"] if not c["ok"]}


@pytest.fixture(scope="module")
def defect_soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("soak-defect")
    proc = faultline("soak", *DEFECT_SOAK, "--out", str(out), env={"FAULTLINE_EXPORTER_DEFECT": "ack_before_send"})
    return proc, out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_soak_with_a_seeded_defect_fails_and_writes_an_incident_file(defect_soak) -> None:  # noqa: ANN001
    proc, out = defect_soak
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "no_loss" in violations(out)
    written = out / "incidents" / INCIDENT
    assert written.exists(), proc.stderr[-2000:]
    scenario = incident.load(written)
    assert scenario.exporter_env.get("FAULTLINE_EXPORTER_DEFECT") == "ack_before_send"
    assert scenario.knobs.get("delivery_timeout_ms") == "1500"
    assert sum(1 for s in scenario.steps if is_fault(s)) == 3
    # Checkpoints saw the loss mid-run, not only at the end.
    report = json.loads((out / "report.json").read_text())["scenarios"][0]
    assert any(p["missing"] and not p["in_flight"] for p in report["checkpoints"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_reproduce_fails_the_same_way(defect_soak, tmp_path: Path) -> None:  # noqa: ANN001
    _proc, out = defect_soak
    proc = faultline("reproduce", str(out / "incidents" / INCIDENT), "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "no_loss" in violations(tmp_path)
    assert "failed 1/1" in said(proc)


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_shrink_cuts_it_to_at_most_three_fault_steps_that_fail_on_every_replay(defect_soak, tmp_path: Path) -> None:  # noqa: ANN001,E501
    _proc, out = defect_soak
    minimal = tmp_path / "minimal.toml"
    proc = faultline("shrink", str(out / "incidents" / INCIDENT), "--out", str(minimal), timeout=2900)
    assert proc.returncode == 0, said(proc)[-3000:]
    assert "trial" in said(proc)  # progress printed as it goes
    assert "(run 3/3): still fails" in said(proc)  # reductions were confirmed three times
    scenario = incident.load(minimal)
    assert scenario.reproduction is not None and scenario.reproduction.rate == "5/5"
    assert "no_loss" in scenario.reproduction.violates
    faults = [s for s in scenario.steps if is_fault(s)]
    assert len(faults) <= 3  # the bound; in fact only the fault that matters is left:
    assert [(type(s.do).__name__, s.do.link) for s in faults] == [("LinkDown", "kafka")]
    assert not [s for s in scenario.steps if not is_fault(s)]  # the checkpoints went too
    assert scenario.during_s < 40
    # The minimal file fails on every replay, not by luck.
    replay = faultline("reproduce", str(minimal), "--repeat", "5", "--out", str(tmp_path / "replay"), timeout=900)
    assert replay.returncode == 1, said(replay)[-3000:]
    assert "failed 5/5" in said(replay)
    assert "no_loss" in violations(tmp_path / "replay")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_clean_short_soak_passes_with_checkpoints_and_resource_trends(tmp_path: Path) -> None:
    proc = faultline("soak", "--duration", "45", "--seed", "3", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())["scenarios"][0]
    assert report["verdict"] == "pass" and not report["interrupted"]
    assert len(report["checkpoints"]) >= 2
    quantities = {t["quantity"] for t in report["resources"]["trends"]}
    assert quantities == {"rss_mib", "open_files", "threads", "connections"}
    assert "no_resource_leak" in {c["name"] for c in report["checks"]}
    assert not (tmp_path / "incidents").exists() or not list((tmp_path / "incidents").iterdir())


# Slow (16 s), like the rest of this file; Ctrl-C of a run is tested in test_run_interrupts.
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ctrl_c_heals_reconciles_and_still_writes_the_report(tmp_path: Path) -> None:
    log = tmp_path / "soak.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "soak", "--duration", "300", "--seed", "5",
                                 "--faults", "kafka_down,redis_down", "--out", str(tmp_path / "out")],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: "applied" in log.read_text() and "link down" in log.read_text(), timeout=90, interval=0.2,
                 what="the first fault of the soak")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130, log.read_text()[-3000:]
    assert time.monotonic() - started < 120  # it did not play out the remaining minutes
    report = json.loads((tmp_path / "out" / "report.json").read_text())["scenarios"][0]
    assert report["interrupted"] and report["verdict"] == "pass"
    assert {"no_loss", "recovered_within"} <= {c["name"] for c in report["checks"] if c["ok"]}
    assert "healing" in log.read_text()
    wait_for(lambda: not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE],
             timeout=20, interval=0.2, what="every server the soak started to stop")
