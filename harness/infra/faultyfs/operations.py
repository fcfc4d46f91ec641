"""The file system itself, run as its own process (``python -m harness.infra.faultyfs``): every
call passes through to a backing directory, except those a rule fails; and writes not yet
fsynced can be forgotten.

The model of durability is lazyfs's (Jepsen's file system for lost-write tests): file *data*
written since the file's last successful fsync is at risk, metadata (creates, renames, links) is
not. It is kept as an undo log per inode rather than a page cache: writes go through at once,
the bytes they overwrite below the last synced size are saved, and forgetting restores them and
cuts the file back to that size. Readers therefore always see the real file, and a crash of
this process leaves the backing directory as the exporter last wrote it.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfusepy import FuseOSError, Operations, fuse_get_context

from harness.infra.faultyfs.control import Applied, Control, FileRule, read_control, write_applied
from harness.infra.proxies.base import Trigger

STAT_KEYS = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns",
             "st_ctime_ns", "st_blocks", "st_blksize")


@dataclass
class Unsynced:
    """What a file's data was at its last successful fsync, as far as it was overwritten since."""

    fd: int  # the file system's own descriptor: a rename or unlink of the file does not lose it
    path: str
    synced_size: int
    undo: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, the bytes that were there)

    def forget(self) -> int:
        """Put the file back as it was at its last fsync; the number of bytes that differed."""
        size = os.fstat(self.fd).st_size
        for offset, old in reversed(self.undo):
            os.pwrite(self.fd, old, offset)
        os.ftruncate(self.fd, self.synced_size)
        os.close(self.fd)
        return max(size - self.synced_size, 0) + sum(len(old) for _offset, old in self.undo)


class Rules:
    """The rules in force, their triggers kept across generations (a rule counts on while in force)."""

    def __init__(self, reaches: Path) -> None:
        self.rules: dict[int, tuple[FileRule, Trigger]] = {}
        self.counts: dict[str, list[int]] = {}
        self.reaches = reaches.open("a", buffering=1)

    def set(self, rules: list[FileRule]) -> None:
        wanted = {rule.number: rule for rule in rules}
        for number in list(self.rules):
            if number not in wanted:
                del self.rules[number]
        for number, rule in wanted.items():
            if number not in self.rules:
                self.rules[number] = (rule, Trigger(rule.nth, rule.times, rule.probability, rule.seed))

    def failing(self, operation: str, path: str, caller: int = 0) -> FileRule | None:
        """The rule that fails this call, if one does (counted, and written to the reach log)."""
        inside = path.lstrip("/")
        for number, (rule, trigger) in sorted(self.rules.items()):
            if rule.operation != operation or not _matches(inside, rule.path):
                continue
            fires = trigger.fires()
            self.counts[str(number)] = [trigger.matched, trigger.fired]
            if fires:
                self.reaches.write(json.dumps({"rule": number, "at": time.monotonic(), "operation": operation,
                                               "path": inside, "errno": rule.errno, "pid": caller}) + "\n")
                return rule
        return None


def _process_of(thread: int) -> int:
    """The process a calling thread belongs to (FUSE names the thread); 0 if it is gone."""
    try:
        with open(f"/proc/{thread}/status") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return thread


def _matches(path: str, pattern: str) -> bool:
    """A pattern with a slash is matched against the whole path inside the mount; one without,
    against the file's name, wherever it is (as .gitignore does: an exporter may keep each
    user's exports in a directory of their own)."""
    return fnmatch.fnmatchcase(path if "/" in pattern else os.path.basename(path), pattern)


class FaultyFiles(Operations):
    """Pass-through to ``backing``, with the rules read from ``state``'s control file."""

    use_ns = True

    def __init__(self, backing: Path, state: Path, exempt: int | None = None) -> None:
        self.backing = backing
        self.state = state
        self.exempt = exempt  # a process whose calls are never failed: the harness reading the files
        self._mutex = threading.RLock()  # one call at a time: the undo log and the triggers are shared
        self.rules = Rules(state / "reaches.jsonl")
        self.unsynced: dict[int, Unsynced] = {}  # by inode
        self.applied = Applied()
        self._control_mtime = -1

    # -- control ---------------------------------------------------------------------------
    def poll_control(self) -> None:
        """Act on a new control file, if there is one (called by a watcher thread)."""
        try:
            mtime = (self.state / "control.json").stat().st_mtime_ns
        except FileNotFoundError:
            return
        with self._mutex:
            if mtime == self._control_mtime:
                return
            self._control_mtime = mtime
            self._act_on(read_control(self.state))

    def _act_on(self, control: Control) -> None:
        self.rules.set(control.rules)
        while self.applied.drops < control.drops:
            self.applied.dropped.append(self.forget_unsynced())
            self.applied.drops += 1
        self.applied.generation = control.generation
        self.applied.counts = dict(self.rules.counts)
        write_applied(self.state, self.applied)

    def forget_unsynced(self) -> dict[str, int]:
        """Every file's data back to its last fsync: what a crash of the machine would leave."""
        forgotten = {entry.path: entry.forget() for entry in self.unsynced.values()}
        self.unsynced.clear()
        return forgotten

    # -- helpers ---------------------------------------------------------------------------
    def _real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def _fail(self, operation: str, path: str) -> FileRule | None:
        if not self.rules.rules:
            return None  # nothing in force: no call is failed, and no caller needs looking up
        # Looked up at each call, not cached: a thread id is reused, and a stale answer could
        # exempt an exporter thread (its fault would then meet nothing) or fail the harness.
        caller = _process_of(fuse_get_context()[2])
        if self.exempt is not None and caller == self.exempt:
            return None
        rule = self.rules.failing(operation, path, caller)
        if rule is not None and not (operation == "fsync" and rule.forgets):
            raise FuseOSError(getattr(errno, rule.errno))
        return rule

    def _before_change(self, fh: int, path: str) -> Unsynced:
        inode = os.fstat(fh).st_ino
        entry = self.unsynced.get(inode)
        if entry is None:
            own = os.open(self._real(path), os.O_RDWR | os.O_CLOEXEC)
            entry = self.unsynced[inode] = Unsynced(own, path.lstrip("/"), os.fstat(own).st_size)
        return entry

    def _save(self, entry: Unsynced, offset: int, length: int) -> None:
        """Keep the bytes a change is about to overwrite, as far as they were synced."""
        keep = min(length, entry.synced_size - offset)
        if offset < entry.synced_size and keep > 0:
            entry.undo.append((offset, os.pread(entry.fd, keep, offset)))

    # -- what the kernel asks ----------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.fstat(fh) if fh is not None else os.lstat(self._real(path))
        found = {key: getattr(st, key) for key in STAT_KEYS}
        return {key.removesuffix("_ns"): value for key, value in found.items()}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        return {key: getattr(st, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                  "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise FuseOSError(errno.EACCES)
        return 0

    def open(self, path: str, flags: int) -> int:
        with self._mutex:
            self._fail("open", path)
            return os.open(self._real(path), flags)

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY | os.O_CREAT) -> int:
        with self._mutex:
            self._fail("open", path)
            return os.open(self._real(path), flags | os.O_CREAT, mode)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self._mutex:
            self._fail("write", path)
            entry = self._before_change(fh, path)
            if fcntl.fcntl(fh, fcntl.F_GETFL) & os.O_APPEND:
                offset = os.fstat(fh).st_size  # an append lands at the real end, whatever the kernel thought
            self._save(entry, offset, len(data))
            return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self._mutex:
            self._fail("truncate", path)
            fd = fh if fh is not None else os.open(self._real(path), os.O_RDWR)
            try:
                entry = self._before_change(fd, path)
                self._save(entry, length, max(entry.synced_size - length, 0))
                os.ftruncate(fd, length)
            finally:
                if fh is None:
                    os.close(fd)
            return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self._mutex:
            rule = self._fail("fsync", path)
            entry = self.unsynced.pop(os.fstat(fh).st_ino, None)
            if rule is not None:  # a failed fsync that forgets: the error once, the data gone
                if entry is not None:
                    self.applied.dropped.append({entry.path: entry.forget()})
                raise FuseOSError(getattr(errno, rule.errno))
            os.fsync(fh)
            if entry is not None:
                os.close(entry.fd)
            return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        with self._mutex:
            rule = self._fail("fsync", path)
            if rule is not None:
                raise FuseOSError(getattr(errno, rule.errno))
            fd = os.open(self._real(path), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return 0

    def flush(self, path: str, fh: int) -> int:
        with self._mutex:
            self._fail("close", path)
            return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def rename(self, old: str, new: str) -> int:
        with self._mutex:
            self._fail("rename", new)
            os.rename(self._real(old), self._real(new))
            return 0

    def link(self, target: str, source: str) -> int:
        with self._mutex:
            self._fail("link", target)
            os.link(self._real(source), self._real(target))
            return 0

    def unlink(self, path: str) -> int:
        with self._mutex:
            self._fail("unlink", path)
            os.unlink(self._real(path))
            return 0

    def mkdir(self, path: str, mode: int) -> int:
        with self._mutex:
            self._fail("mkdir", path)
            os.mkdir(self._real(path), mode)
            return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._real(path))
        else:
            os.utime(self._real(path), ns=times)
        return 0

