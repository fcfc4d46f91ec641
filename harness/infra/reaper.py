"""What a run leaves if it is killed (``kill -9``, a CI runner's timeout) is found again and removed.

Every faultline process keeps a state file under the cache directory naming what it started:
process groups (pid and start time: a pid reused by another program is never touched),
tmpfs mounts, immutable directories and temporary directories. ``faultline clean`` (and the start
of ``run``, ``up`` and pytest sessions) reads the state files whose owner is gone and undoes
what they name, in an order that works: processes first, then immutable flags, mounts and
directories. A clean exit removes its own state file.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from harness.paths import cache_dir

STATE_DIR_NAME = "state"


@dataclass
class State:
    owner_pid: int
    owner_started: float
    processes: list[tuple[int, float, str]] = field(default_factory=list)  # (pid, start time, what)
    mounts: list[str] = field(default_factory=list)
    immutable: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)


STATE_ENV = "FAULTLINE_STATE_DIR"


def state_dir() -> Path:
    """Where the state files are: under the cache directory, or ``FAULTLINE_STATE_DIR``."""
    override = os.environ.get(STATE_ENV)
    return Path(override) if override else cache_dir() / STATE_DIR_NAME


def _started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class Recorder:
    """This process's state file, written again (atomically) whenever something is added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: State | None = None

    def _path(self, state: State) -> Path:
        return state_dir() / f"{state.owner_pid}-{int(state.owner_started)}.json"

    def _update(self, change: str, value: object, add: bool) -> None:
        with self._lock:
            if self.state is None:
                me = os.getpid()
                self.state = State(me, _started(me) or 0.0)
                atexit.register(self.close)
            items: list[object] = getattr(self.state, change)
            if add and value not in items:
                items.append(value)
            elif not add and value in items:
                items.remove(value)
            path = self._path(self.state)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(asdict(self.state)))
            os.replace(temporary, path)

    def process(self, pid: int, what: str) -> None:
        started = _started(pid)
        if started is not None:
            self._update("processes", (pid, started, what), True)

    def mount(self, path: Path, add: bool = True) -> None:
        self._update("mounts", str(path), add)

    def immutable(self, path: Path, add: bool = True) -> None:
        self._update("immutable", str(path), add)

    def directory(self, path: Path, add: bool = True) -> None:
        self._update("directories", str(path), add)

    def close(self) -> None:
        """At exit: the state file goes when nothing it names is left (a teardown that failed
        keeps it, for ``faultline clean``)."""
        with self._lock:
            if self.state is not None and not _undo(self.state, dry_run=True, own=True):
                self._path(self.state).unlink(missing_ok=True)
                self.state = None


RECORDER = Recorder()


def _owner_alive(state: State) -> bool:
    started = _started(state.owner_pid)
    return started is not None and abs(started - state.owner_started) < 1.0


def _load(path: Path) -> State | None:
    try:
        raw = json.loads(path.read_text())
        raw["processes"] = [tuple(p) for p in raw.get("processes", [])]
        return State(**raw)
    except (OSError, ValueError, TypeError):
        return None


def reap(dry_run: bool = False) -> list[str]:
    """Undo what dead faultline processes left; returns one line per thing done (or to do)."""
    done: list[str] = []
    directory = state_dir()
    if not directory.is_dir():
        return done
    for path in sorted(directory.glob("*.json")):
        state = _load(path)
        if state is None:
            done.append(f"unreadable state file {path} removed")
            if not dry_run:
                path.unlink(missing_ok=True)
            continue
        if state.owner_pid == os.getpid() or _owner_alive(state):
            continue
        done += _undo(state, dry_run)
        if not dry_run:
            path.unlink(missing_ok=True)
    return done


def _undo(state: State, dry_run: bool, own: bool = False) -> list[str]:
    """What ``state`` names that is still there, undone (or only listed, ``dry_run``). ``own``:
    this process's own state, whose processes are its children until it exits."""
    done = []
    for pid, started, what in state.processes:
        now = _started(pid)
        if now is None or abs(now - started) >= 1.0 or (own and _zombie(pid)):
            continue  # gone, or the pid belongs to another program now
        done.append(f"killed {what} (pid {pid}) and its process group")
        if not dry_run:
            _kill_group(pid)
    for path in state.immutable:
        if Path(path).exists():
            done.append(f"cleared the immutable flag on {path}")
            if not dry_run:
                subprocess.run(["chattr", "-R", "-i", path], capture_output=True, check=False, timeout=60)
    for path in reversed(state.mounts):
        if _mounted(path):
            done.append(f"unmounted {path}")
            if not dry_run:
                subprocess.run(["umount", "-l", path], capture_output=True, check=False, timeout=60)
    for path in state.directories:
        if Path(path).exists():
            done.append(f"removed {path}")
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True)
    return done


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _kill_group(pid: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # it went by itself meanwhile
    try:
        psutil.Process(pid).wait(timeout=10)
    except psutil.Error:
        return


def _mounted(path: str) -> bool:
    target = os.path.realpath(path)
    try:
        return any(part.mountpoint == target for part in psutil.disk_partitions(all=True))
    except OSError:
        return False
