"""Two Faultline processes on one machine (issue 29): two explores side by side, each on its own
stack, never collide on a port (one died with "exporter: port ... is already in use") and never
write librdkafka's raw lines to the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.faultline, pytest.mark.slow, pytest.mark.timeout(900)]


def test_two_explores_side_by_side_both_finish_clean(tmp_path: Path) -> None:
    runs = [subprocess.Popen([sys.executable, "-m", "harness.cli", "explore", "--seed", str(seed), "--runs", "3",
                              "--kinds", "link_down,kill_exporter,restart_service", "--replays", "0",
                              "--out", str(tmp_path / f"explore-{seed}")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
            for seed in (11, 12)]
    finished = [run.communicate(timeout=840) for run in runs]
    for run, (out, err) in zip(runs, finished, strict=True):
        assert run.returncode == 0, (out[-3000:], err[-3000:])
        assert "already in use" not in out + err
        assert "%3|" not in err and "rdkafka#" not in err
        assert out.count("pass explore_s") + err.count("pass explore_s") >= 3
