"""``faultline run -j 2`` judges the catalogue as ``-j 1`` does: each scenario on a stack of its
own gives the same verdict, the same violated checks and the same classes of records in its
ledger as when the scenarios run one after another on one stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.search.explore_pool import GUIDANCE_LAG

pytestmark = pytest.mark.faultline

# Records whose class is not a finding in itself: how many were delivered or dead-lettered for a
# true reason depends on how many were written while a fault lasted, not on what was judged.
EXPECTED_CLASSES = {"delivered_intact", "dead_lettered", "indeterminate_absent"}


def gate(out: Path, jobs: int) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-j", str(jobs), "--out", str(out)],
                          capture_output=True, text=True, timeout=1500, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "report.json").read_text()), time.monotonic() - began


def judged(scenario: dict[str, Any]) -> tuple[object, ...]:
    ledger = scenario.get("ledger") or {}
    findings = sorted(k for k, v in (ledger.get("counts") or {}).items() if v and k not in EXPECTED_CLASSES)
    return (scenario["verdict"], sorted(c["name"] for c in scenario["checks"] if not c["ok"]),
            scenario.get("skipped"), ledger.get("ok"), findings)


# Slow (about 9 minutes: the catalogue twice). `nox -s slow` runs it; the tests session covers -j
# with two scenarios side by side (test_gate_cli.py), and CI's mutants session plays on -j stacks.
@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_the_catalogue_side_by_side_is_judged_as_in_turn(tmp_path: Path) -> None:
    serial, serial_s = gate(tmp_path / "serial", 1)
    parallel, parallel_s = gate(tmp_path / "parallel", 2)
    assert parallel["jobs"] == 2 and serial["jobs"] == 1
    assert [s["name"] for s in parallel["scenarios"]] == [s["name"] for s in serial["scenarios"]]
    different = {s["name"]: (judged(s), judged(p)) for s, p in zip(serial["scenarios"], parallel["scenarios"],
                                                                      strict=True) if judged(s) != judged(p)}
    assert different == {}
    assert {s["stack"] for s in parallel["scenarios"]} == {1, 2} and parallel["beside"]
    # Side by side is the point: it must be faster than one after another.
    assert parallel_s < serial_s, (parallel_s, serial_s)
    print(f"catalogue: -j 1 {serial_s:.0f}s, -j 2 {parallel_s:.0f}s")



def explore(out: Path, jobs: int) -> dict[str, Any]:
    command = ["explore", "--seed", "5", "--runs", "6", "-j", str(jobs), "--replays", "0", "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "harness.cli", *command], capture_output=True, text=True,
                          timeout=900, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


def schedule(out: Path, run: int) -> str:
    return (out / "schedules" / f"explore_s5_r{run}.toml").read_text()


# Slow (about 3 minutes). The unit test (test_explore_jobs.py) plays stand-in runs whose reactions
# are fixed, so it can compare every schedule. Here the runs are real and their reactions (which
# guide the draws after them) depend on timing, at -j 1 as at -j 2: what must be the same are the
# draws no judged run can reach, the first GUIDANCE_LAG, and a clean exporter holding.
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_explore_on_two_stacks_plays_and_draws_as_on_one(tmp_path: Path) -> None:
    serial, parallel = explore(tmp_path / "serial", 1), explore(tmp_path / "parallel", 2)
    assert parallel["jobs"] == 2 and {s["stack"] for s in parallel["scenarios"]} == {1, 2}
    names = [f"explore_s5_r{n}" for n in range(1, 7)]
    assert [s["name"] for s in parallel["scenarios"]] == [s["name"] for s in serial["scenarios"]] == names
    for run in range(1, GUIDANCE_LAG + 1):
        assert schedule(tmp_path / "parallel", run) == schedule(tmp_path / "serial", run), run
    # A clean exporter holds at -j 2 as at -j 1. A run whose request-triggered faults met nothing
    # is skipped ("nothing was tested"), which depends on timing: neither a pass nor a failure.
    for report in (serial, parallel):
        verdicts = [s["verdict"] for s in report["scenarios"]]
        assert set(verdicts) <= {"pass", "skipped"} and verdicts.count("pass") >= 3, verdicts
