"""The faulty file system under the exporter's directories, on its own (a real FUSE mount, no
exporter): a rule fails exactly the calls it names and logs each one; a failed fsync forgets
what was not synced and the next one succeeds; a crash keeps only what was fsynced, overwrites
included; unmounting leaves the files in the directory and no process or mount behind."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.infra.faultyfs.control import FileRule
from harness.infra.faultyfs.mount import FaultyMount
from harness.provision.components import COMPONENTS

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a FUSE file system here needs root"),
    pytest.mark.skipif(COMPONENTS["fuse"].locate() is None, reason="no libfuse 3 or /dev/fuse"),
]


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[FaultyMount]:
    directory = tmp_path / "sink"
    directory.mkdir()
    (directory / "before.txt").write_bytes(b"there before the mount\n")
    mount = FaultyMount(directory, tmp_path / "state").mount()
    try:
        yield mount
    finally:
        if mount.process is not None:
            mount.unmount()


def append(path: Path, data: bytes, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_a_rule_fails_only_the_calls_it_names_and_logs_each(mounted: FaultyMount) -> None:
    target, other = mounted.directory / "records.jsonl", mounted.directory / "other.jsonl"
    number = mounted.add_rule(FileRule(0, "write", "ENOSPC", "records.jsonl", nth=2, times=1))
    append(target, b"first\n", sync=True)  # the 1st matching write: not yet
    with pytest.raises(OSError) as refused:
        append(target, b"second\n", sync=True)
    assert refused.value.errno == errno.ENOSPC
    append(target, b"third\n", sync=True)  # times=1: once only
    append(other, b"elsewhere\n", sync=True)  # another name: never matched
    assert mounted.remove_rule(number) == (3, 1)
    assert target.read_bytes() == b"first\nthird\n"
    assert [(f["operation"], f["path"], f["errno"]) for f in mounted.failures(number)] == [
        ("write", "records.jsonl", "ENOSPC")]
    append(target, b"after\n", sync=True)  # the rule is off
    assert target.read_bytes().endswith(b"after\n")


def test_a_failed_fsync_forgets_the_unsynced_data_and_the_next_succeeds(mounted: FaultyMount) -> None:
    target = mounted.directory / "records.jsonl"
    append(target, b"synced\n", sync=True)
    mounted.add_rule(FileRule(0, "fsync", "EIO", "*.jsonl"))
    fd = os.open(target, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"lost\n")
        with pytest.raises(OSError) as failed:
            os.fsync(fd)
        assert failed.value.errno == errno.EIO
        os.fsync(fd)  # fsyncgate: the retry has nothing left to fail on
    finally:
        os.close(fd)
    assert target.read_bytes() == b"synced\n"


def test_a_crash_keeps_only_what_was_fsynced(mounted: FaultyMount) -> None:
    kept, overwritten, fresh = (mounted.directory / name for name in ("kept", "overwritten", "fresh"))
    append(kept, b"durable\n", sync=True)
    append(kept, b"not yet\n", sync=False)
    overwritten.write_bytes(b"0123456789")
    with overwritten.open("r+b") as handle:
        os.fsync(handle.fileno())
        handle.seek(3)
        handle.write(b"abc")
        handle.flush()
    append(fresh, b"never synced\n", sync=False)
    forgotten = mounted.forget_unsynced()
    assert kept.read_bytes() == b"durable\n"
    assert overwritten.read_bytes() == b"0123456789"  # the overwrite undone, not only cut back
    assert fresh.read_bytes() == b""  # created (metadata survives, as in lazyfs), its data gone
    assert forgotten == {"kept": 8, "overwritten": 3, "fresh": 13}


def test_unmounting_leaves_the_files_in_place_and_nothing_running(mounted: FaultyMount) -> None:
    append(mounted.directory / "records.jsonl", b"line\n", sync=True)
    pid = mounted.process.pid if mounted.process is not None else -1
    mounted.unmount()
    assert not os.path.ismount(mounted.directory)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert sorted(p.name for p in mounted.directory.iterdir()) == ["before.txt", "records.jsonl"]
    assert (mounted.directory / "before.txt").read_bytes() == b"there before the mount\n"


def test_the_exempt_process_passes_while_another_meets_the_rule(tmp_path: Path) -> None:
    import subprocess
    import sys

    directory = tmp_path / "sink"
    directory.mkdir()
    mount = FaultyMount(directory, tmp_path / "state", exempt=os.getpid()).mount()
    try:
        number = mount.add_rule(FileRule(0, "open", "EACCES", "*", times=0))
        target = directory / "records.jsonl"
        append(target, b"the harness reads and writes untouched\n", sync=True)
        other = subprocess.run([sys.executable, "-c", f"open({str(target)!r}, 'rb')"], capture_output=True, text=True,
                               timeout=30, check=False)
        assert other.returncode != 0 and "Permission denied" in other.stderr, other.stderr
        failed = mount.failures(number)
        assert len(failed) == 1 and failed[0]["pid"] not in (0, os.getpid()), failed
    finally:
        mount.unmount()
