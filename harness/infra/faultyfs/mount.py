"""The harness's side of a faulty file system: mount it over a directory of the exporter's,
put rules in force and take them off, forget unsynced data, and unmount, moving what was written
back into the directory so that the run's files are where they always are."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.infra.faultyfs.control import Applied, Control, FileRule, read_applied, write_control
from harness.infra.reaper import RECORDER
from harness.infra.waiting import wait_for

MOUNT_TIMEOUT_S = 20.0
ANSWER_TIMEOUT_S = 10.0


class FaultyMount:
    """One directory on the faulty file system; ``state`` holds the backing files and the control."""

    def __init__(self, directory: Path, state: Path, exempt: int | None = None) -> None:
        self.directory = directory
        self.state = state
        self.exempt = exempt  # a process whose calls pass untouched (the harness's, reading the files)
        self.backing = state / "backing"
        self.control = Control()
        self.process: subprocess.Popen[bytes] | None = None
        self._next_rule = 0

    def mount(self) -> FaultyMount:
        """Mount over the directory (what is in it moves to the backing first)."""
        self.backing.mkdir(parents=True, exist_ok=True)
        for entry in self.directory.iterdir():
            os.replace(entry, self.backing / entry.name)
        write_control(self.state, self.control)
        RECORDER.mount(self.directory)  # recorded first: a kill between the two still leaves a trace
        log = (self.state / "faultyfs.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.infra.faultyfs", str(self.backing), str(self.directory), str(self.state),
             *([str(self.exempt)] if self.exempt is not None else [])],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        RECORDER.process(self.process.pid, f"faulty file system on {self.directory}")
        wait_for(lambda: self._mounted_or_dead(), timeout=MOUNT_TIMEOUT_S,
                 what=f"the faulty file system on {self.directory}", describe=self._log_tail)
        if not os.path.ismount(self.directory):
            raise HarnessError(f"the faulty file system on {self.directory} exited: {self._log_tail()}")
        return self

    def _mounted_or_dead(self) -> bool:
        return os.path.ismount(self.directory) or (self.process is not None and self.process.poll() is not None)

    def _log_tail(self) -> str:
        try:
            return (self.state / "faultyfs.log").read_text(errors="replace")[-600:].strip() or "(empty log)"
        except OSError as exc:
            return f"(no log: {exc})"

    def _say(self, control: Control) -> Applied:
        """Write the control and wait until the file system has acted on it."""
        self.control = dataclasses.replace(control, generation=self.control.generation + 1)
        write_control(self.state, self.control)
        generation = self.control.generation
        return wait_for(lambda: _at_least(read_applied(self.state), generation), timeout=ANSWER_TIMEOUT_S,
                        what=f"the faulty file system on {self.directory} to act on control {generation}",
                        describe=self._log_tail)

    def add_rule(self, rule: FileRule) -> int:
        self._next_rule += 1
        numbered = dataclasses.replace(rule, number=self._next_rule)
        self._say(dataclasses.replace(self.control, rules=[*self.control.rules, numbered]))
        return self._next_rule

    def remove_rule(self, number: int) -> tuple[int, int]:
        """Take a rule off; what it met and how many of those it failed."""
        applied = self._say(dataclasses.replace(self.control,
                                                rules=[r for r in self.control.rules if r.number != number]))
        matched, fired = applied.counts.get(str(number), [0, 0])
        return matched, fired

    def forget_unsynced(self) -> dict[str, int]:
        """What a crash would leave: every file back to its last fsync; bytes forgotten per file."""
        applied = self._say(dataclasses.replace(self.control, drops=self.control.drops + 1))
        return applied.dropped[-1] if applied.dropped else {}

    def failures(self, rule: int) -> list[dict[str, object]]:
        """The calls ``rule`` failed, as the file system logged them."""
        path = self.state / "reaches.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [entry for entry in map(json.loads, lines) if entry["rule"] == rule]

    def unmount(self) -> None:
        """Unmount (lazily, should the exporter still hold a file), end the process, and move the
        files back into the directory."""
        if os.path.ismount(self.directory):
            proc = subprocess.run(["umount", "-l", str(self.directory)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise HarnessError(f"cannot unmount the faulty file system on {self.directory}: {proc.stderr.strip()}")
        RECORDER.mount(self.directory, add=False)
        if self.process is not None:
            try:
                self.process.wait(timeout=ANSWER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=ANSWER_TIMEOUT_S)
            self.process = None
        for entry in self.backing.iterdir():
            target = self.directory / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)


def _at_least(applied: Applied, generation: int) -> Applied | None:
    return applied if applied.generation >= generation else None
