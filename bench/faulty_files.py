"""What the faulty file system (harness.infra.faultyfs) adds to the exporter's durable writes, in
one run: the file sink's pattern (open, append a batch, fsync, close) with 64 KiB batches, on a
plain directory and on the same disk through the FUSE mount with no rule in force. Medians of
rounds; the target is a ratio to the plain directory, so a slower disk moves both sides.

Target on the 2-core reference machine: at most 4x the plain directory per durable append (the
mount is only there in scenarios that fault the file system, and a file sink's batch is mostly
its fsync on a real disk).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from harness.infra.faultyfs.mount import FaultyMount
from harness.report.figures import Figure

ROUNDS = 5
APPENDS = 200
BATCH = b"x" * 65_535 + b"\n"
TARGET_RATIO = 4.0


def _per_append_ms(directory: Path) -> float:
    path = directory / "records.jsonl"
    t0 = time.perf_counter()
    for _ in range(APPENDS):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, BATCH)
            os.fsync(fd)
        finally:
            os.close(fd)
    elapsed = (time.perf_counter() - t0) / APPENDS * 1000
    path.unlink()
    return elapsed


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="faultline-bench-files-", dir=Path.home()) as work:
        plain, mounted = Path(work) / "plain", Path(work) / "mounted"
        plain.mkdir()
        mounted.mkdir()
        mount = FaultyMount(mounted, Path(work) / "state").mount()
        rounds: dict[str, list[float]] = {"plain": [], "faulty_fs": []}
        try:
            for _ in range(ROUNDS):  # alternated: a busy moment hits both alike
                rounds["plain"].append(_per_append_ms(plain))
                rounds["faulty_fs"].append(_per_append_ms(mounted))
        finally:
            mount.unmount()
    medians = {name: round(statistics.median(values), 3) for name, values in rounds.items()}
    ratio = medians["faulty_fs"] / medians["plain"]
    return {
        "figures": [Figure("a durable 64 KiB append through the faulty file system, over a plain directory", "x",
                           tuple(round(f / p, 3) for f, p in zip(rounds["faulty_fs"], rounds["plain"], strict=True)),
                           "lower", TARGET_RATIO)],
        "durable_append_of_64KiB_ms": medians,
        "ratio_to_plain": round(ratio, 3),
        "ratio_to_target": round(ratio / TARGET_RATIO, 3),
        "meets_target": ratio <= TARGET_RATIO,
    }
