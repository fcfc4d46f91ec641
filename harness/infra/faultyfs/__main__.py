"""``python -m harness.infra.faultyfs BACKING MOUNTPOINT STATE [EXEMPT_PID]``: mount the file system
and serve it until it is unmounted (or the process gets SIGTERM, which libfuse answers by
unmounting); calls of the process EXEMPT_PID (the harness) are never failed."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from mfusepy import FUSE

from harness.infra.faultyfs.operations import FaultyFiles

CONTROL_POLL_S = 0.02


def _watch(files: FaultyFiles, stop: threading.Event) -> None:
    while not stop.wait(CONTROL_POLL_S):
        files.poll_control()


def main(argv: list[str]) -> int:
    backing, mountpoint, state = Path(argv[0]), argv[1], Path(argv[2])
    files = FaultyFiles(backing, state, int(argv[3]) if len(argv) > 3 else None)
    files.poll_control()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(files, stop), name="faultyfs-control", daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        # No caching in the kernel: a file cut back by a forget must read as cut back at once,
        # and an append must land where the file really ends.
        FUSE(files, mountpoint, foreground=True, allow_other=True, direct_io=True, attr_timeout=0,
             entry_timeout=0, negative_timeout=0, fsname="faultline-faultyfs")
    finally:
        stop.set()
        watcher.join(timeout=5)
    print(f"faultyfs: unmounted {mountpoint} after {time.monotonic() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
