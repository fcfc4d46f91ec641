"""The exporter's metrics directories do not pile up: one left by an exporter that was killed
(SIGKILL runs no cleanup) is removed by the next one that starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from exporter.__main__ import METRICS_PREFIX, sweep_metrics_dirs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_directories_of_dead_exporters_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"{METRICS_PREFIX}{_dead_pid()}-abc"
    live = tmp_path / f"{METRICS_PREFIX}{os.getpid()}-def"
    unrelated = tmp_path / "exporter-metricsless"
    for directory in (dead, live, unrelated):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")
    assert sweep_metrics_dirs(str(tmp_path)) == [dead.name]
    assert not dead.exists() and live.exists() and unrelated.exists()
