"""The gate and explore side by side (``-j``): the whole catalogue's wall time, and explore's runs
per hour, at -j 1, 2 and 3 in one invocation, through the command a user types.

Targets on the 2-core reference machine (issue 30), at the -j the machine chooses by default:
the gate under 3 minutes and explore over 1,000 runs an hour. A gate that did not pass is not a
figure: the bench fails instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.play.parallel import choose_jobs
from harness.report.figures import Figure

JOBS = (1, 2, 3)
EXPLORE_BUDGET_S = 180
TARGET_GATE_S = 180.0
TARGET_RUNS_PER_HOUR = 1000.0


def _faultline(*args: str, timeout: float) -> float:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"faultline {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}")
    return time.monotonic() - began


def _explore(out: Path, jobs: int) -> dict:
    _faultline("explore", "--budget", f"{EXPLORE_BUDGET_S}s", "--seed", "1", "--keep-going", "--replays", "0",
               "--amplify-runs", "0", "--no-shrink", "-j", str(jobs), "--out", str(out), timeout=EXPLORE_BUDGET_S + 600)
    found = json.loads((out / "report.json").read_text())["explore"]
    return {"runs": found["runs"], "seconds": found["seconds"],
            "runs_per_hour": round(found["runs"] * 3600 / found["seconds"], 1)}


def run() -> dict:
    default = choose_jobs(None).n
    gate_s, explored = {}, {}
    with tempfile.TemporaryDirectory(prefix="faultline-bench-parallel-") as tmp:
        for jobs in JOBS:
            gate_s[jobs] = round(_faultline("run", "-j", str(jobs), "--out", f"{tmp}/gate-{jobs}", timeout=3600), 1)
            scenarios = len(json.loads(Path(f"{tmp}/gate-{jobs}/report.json").read_text())["scenarios"])
        for jobs in JOBS:
            explored[jobs] = _explore(Path(tmp) / f"explore-{jobs}", jobs)
    figures = []
    for jobs in JOBS:
        mark = ", the machine's default" if jobs == default else ""
        figures += [Figure(f"the gate ({scenarios} scenarios) at -j {jobs}{mark}", "s", (gate_s[jobs],), "lower",
                           TARGET_GATE_S if jobs == default else None),
                    Figure(f"explore at -j {jobs}{mark} ({EXPLORE_BUDGET_S} s from seed 1)", "runs/hour",
                           (explored[jobs]["runs_per_hour"],), "higher",
                           TARGET_RUNS_PER_HOUR if jobs == default else None)]
    return {"figures": figures, "default_jobs": default, "gate_seconds": gate_s, "explore": explored}
