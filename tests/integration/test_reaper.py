"""kill -9 of a run in the middle of a scenario (a tmpfs mounted, a directory made immutable, a FUSE
file system mounted with its process, the servers and the exporter running), then `faultline
clean`: nothing of it is left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.infra.waiting import wait_for

pytestmark = pytest.mark.faultline

INCIDENT = """
[incident]
name = "left_behind"
description = "a disk on a tmpfs, a read-only directory and a faulty file system, held long enough to be killed in"
during_s = 60.0

[workload]
records = 200

[[steps]]
phase = "during"
at = 0.2
duration = 50.0
fault = "disk_full"
size_kib = 256
directory = "export_dir"

[[steps]]
phase = "during"
at = 0.5
duration = 50.0
fault = "read_only_dir"
directory = "export_dir"

[[steps]]
phase = "during"
at = 0.2
duration = 50.0
fault = "file_error"
directory = "file_sink"
operation = "fsync"

[expect]
no_loss = true
"""


def _state(directory: Path) -> dict | None:
    files = list(directory.glob("*.json"))
    return json.loads(files[0].read_text()) if files else None


def _alive(processes: list[list]) -> list[int]:
    alive = []
    for pid, started, _what in processes:
        try:
            if abs(psutil.Process(pid).create_time() - started) < 1.0:
                alive.append(pid)
        except psutil.Error:
            continue
    return alive


def _mounted(path: str) -> bool:
    return any(p.mountpoint == os.path.realpath(path) for p in psutil.disk_partitions(all=True))


@pytest.mark.timeout(300)
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs and chattr need root")
def test_kill_9_mid_scenario_then_clean_leaves_nothing(tmp_path: Path) -> None:
    states = tmp_path / "state"
    env = {**os.environ, "FAULTLINE_STATE_DIR": str(states)}
    incident = tmp_path / "left_behind.toml"
    incident.write_text(INCIDENT)
    run = subprocess.Popen([sys.executable, "-m", "harness.cli", "reproduce", str(incident), "--out",
                            str(tmp_path / "out")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        state = wait_for(lambda: (s := _state(states)) and len(s["mounts"]) == 2 and s["immutable"] and s,
                         timeout=180, interval=0.2,
                         what="the run to mount its tmpfs and its file system and make a directory immutable")
        assert any("faulty file system" in what for _pid, _started, what in state["processes"]), state
        os.kill(run.pid, signal.SIGKILL)  # no teardown at all
        run.wait(timeout=30)
        state = _state(states) or state
        assert _alive(state["processes"]), "the killed run should have left its servers running"
        assert all(_mounted(m) for m in state["mounts"])
        clean = subprocess.run([sys.executable, "-m", "harness.cli", "clean"], env=env, capture_output=True,
                               text=True, timeout=120, check=False)
        said = " ".join(clean.stderr.split())
        assert clean.returncode == 0, said
        assert "killed" in said and "unmounted" in said and "cleared the immutable flag" in said
        assert "removed" in said
        assert _alive(state["processes"]) == []
        assert not any(_mounted(m) for m in state["mounts"])
        assert not any(Path(d).exists() for d in state["directories"])  # the stack directory
        shutil.rmtree(tmp_path / "out")  # the run's report directory can go: no flag, no mount holds it
        assert list(states.glob("*.json")) == []
        again = subprocess.run([sys.executable, "-m", "harness.cli", "clean"], env=env, capture_output=True,
                               text=True, timeout=60, check=False)
        assert "0 thing(s) undone" in " ".join(again.stderr.split())
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        subprocess.run([sys.executable, "-m", "harness.cli", "clean"], env=env, capture_output=True, timeout=120,
                       check=False)
