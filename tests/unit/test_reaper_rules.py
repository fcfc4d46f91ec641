"""The reaper's rules without servers: only what dead owners left is undone, and a process is
killed only when its pid and its start time both match (a reused pid is someone else's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest

from harness.infra.reaper import State, reap


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


@pytest.fixture
def states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    monkeypatch.setenv("FAULTLINE_STATE_DIR", str(directory))
    return directory


def _write(directory: Path, state: State) -> Path:
    path = directory / f"{state.owner_pid}-{int(state.owner_started)}.json"
    path.write_text(json.dumps(asdict(state)))
    return path


def test_what_a_dead_owner_left_is_undone(states: Path, tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    leftover = tmp_path / "stack"
    (leftover / "data").mkdir(parents=True)
    state = State(_dead_pid(), 1.0, processes=[(child.pid, psutil.Process(child.pid).create_time(), "redis")],
                  directories=[str(leftover)])
    path = _write(states, state)
    done = reap()
    assert f"killed redis (pid {child.pid}) and its process group" in done and f"removed {leftover}" in done
    child.wait(timeout=10)  # killed: it would sleep for two minutes otherwise (the test timeout is far less)
    assert not leftover.exists() and not path.exists()


def test_a_live_owner_and_a_reused_pid_are_left_alone(states: Path, tmp_path: Path) -> None:
    me = psutil.Process(os.getpid())
    mine = _write(states, State(me.pid, me.create_time(), directories=[str(tmp_path)]))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        # A dead owner's record of a pid that now belongs to a process started at another time.
        _write(states, State(_dead_pid(), 1.0, processes=[(other.pid, 12345.0, "kafka")]))
        assert reap() == []
        assert other.poll() is None and mine.exists() and tmp_path.exists()
    finally:
        other.kill()
        other.wait(timeout=10)
    mine.unlink()


def test_dry_run_lists_and_changes_nothing(states: Path, tmp_path: Path) -> None:
    leftover = tmp_path / "stack"
    leftover.mkdir()
    path = _write(states, State(_dead_pid(), 1.0, directories=[str(leftover)]))
    assert reap(dry_run=True) == [f"removed {leftover}"]
    assert leftover.exists() and path.exists()
