"""Durable file writes: written, flushed, fsynced; or an error, and no half data left behind."""

from __future__ import annotations

import logging
import os

from exporter import defects

log = logging.getLogger("exporter.files")


def append_durably(path: str, data: bytes, *, sync: bool = True) -> None:
    """Append ``data`` to ``path`` and fsync. On failure the file is cut back to where it was.

    Raises the OSError (ENOSPC, EACCES, EIO...) for the caller to retry or fail on. A failed
    fsync is never retried: the kernel may have dropped the pages it could not write (Linux
    does since 4.13), so a second fsync succeeds with the data gone; the whole append is
    failed instead, and the caller writes it again. ``sync=False`` is only for a seeded defect.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            _write_all(fd, data)
            if sync:
                _fsync(fd)
        except OSError:
            if defects.on("ignore_enospc"):
                # The incident's bug: the write error is swallowed and the batch counts as written.
                log.debug("write error ignored")
                return
            os.ftruncate(fd, start)  # no half line left for a reader to trip on
            raise
    finally:
        os.close(fd)


def _fsync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        if defects.on("fsync_retried_after_error"):
            # The bug PostgreSQL had until 2018: retry, and believe the retry.
            log.warning("fsync failed; retrying")
            os.fsync(fd)
            return
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(path: str) -> None:
    """A rename is durable only once its directory is synced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
