"""Locust load, always in a subprocess: importing locust monkey-patches the standard library
(gevent), which must never happen inside the harness.

``LoadRun`` starts ``python -m locust`` headless on one of the locustfiles in
``harness/rig/locustfiles`` (in its own process group, so the whole tree is stopped together),
waits for it, reads its CSV statistics (requests/s, failures, p50/p95/p99 per request name) and
the write journal the source-writer users keep, for the ledger. ``workers`` > 0 uses Locust's
distributed mode on this machine (``--processes``: a master and that many workers).
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import HarnessError
from harness.infra.lifecycle import StopAtExit
from harness.infra.reaper import RECORDER
from harness.report.result import LoadStats, RequestStats

LOCUSTFILES = Path(__file__).parent / "locustfiles"
LOCUSTFILE = {"source": LOCUSTFILES / "source_writers.py", "api": LOCUSTFILES / "api_users.py"}
GRACE_S = 30.0  # beyond the planned window: Locust's own start-up and its stop timeout


class LoadError(HarnessError):
    """Locust could not run or produced no statistics; the message carries its log's tail."""


_running: StopAtExit[LoadRun] = StopAtExit(lambda load: load.stop())  # no Locust outlives the harness


@dataclass(frozen=True)
class JournalEntry:
    record_id: int | None
    digest: bytes
    outcome: str


class LoadSpec(Protocol):
    """What a Locust run is asked for (the ``load`` step kind's parameters): a protocol, so that
    this runner never imports the step kinds above it."""

    @property
    def kind(self) -> str: ...
    @property
    def users(self) -> int: ...
    @property
    def spawn_rate(self) -> float: ...
    @property
    def workers(self) -> int: ...
    @property
    def wait_s(self) -> float: ...
    @property
    def rows_per_write(self) -> int: ...


class LoadRun:
    def __init__(self, load: LoadSpec, duration_s: float, workdir: Path, *, dsn: str, table: str, base_url: str,
                 exports_path: str = "/exports", key_prefix: str = "load", profile: str = "ascii", size: int = 200,
                 seed: int = 1, tokens_file: Path | None = None) -> None:
        self.load = load
        self.duration_s = duration_s
        self.workdir = workdir
        self.base_url = base_url
        self.env = {"FAULTLINE_LOAD_DIR": str(workdir), "FAULTLINE_LOAD_DSN": dsn, "FAULTLINE_LOAD_TABLE": table,
                    "FAULTLINE_LOAD_PREFIX": key_prefix, "FAULTLINE_LOAD_PROFILE": profile,
                    "FAULTLINE_LOAD_SIZE": str(size), "FAULTLINE_LOAD_SEED": str(seed),
                    "FAULTLINE_LOAD_ROWS": str(load.rows_per_write), "FAULTLINE_LOAD_WAIT_S": str(load.wait_s),
                    "FAULTLINE_LOAD_EXPORTS_PATH": exports_path,
                    # API users authenticate with the run's load-* tokens (harness.model.api_tokens).
                    "FAULTLINE_LOAD_TOKENS_FILE": str(tokens_file or "")}
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.resolved = 0  # writes whose outcome was read back from the source table
        self.key_prefix = key_prefix  # every row its users write has a key that starts with it

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "locust.log"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE[self.load.kind]), "--headless",
                   "--users", str(self.load.users), "--spawn-rate", str(self.load.spawn_rate),
                   "--run-time", f"{max(1, math.ceil(self.duration_s))}s", "--stop-timeout", "5",
                   "--csv", str(self.workdir / "locust"), "--only-summary", "--host", self.base_url,
                   "--loglevel", "WARNING"]
        if self.load.workers:
            command += ["--processes", str(self.load.workers)]
        return command

    def start(self) -> LoadRun:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A report directory used before holds an earlier run's journals: never mix them in.
        for stale in [*self.workdir.glob("journal-*.tsv"), *self.workdir.glob("locust_*.csv")]:
            stale.unlink()
        with self.log_path.open("ab") as log:
            # Own process group: Locust's worker processes are stopped with it, never left behind.
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env}, start_new_session=True,
                                            cwd=str(self.workdir))
        self.started = time.monotonic()
        RECORDER.process(self.process.pid, f"locust ({self.load.kind} load)")
        _running.add(self)
        return self

    def finish(self) -> LoadStats:
        """Wait for Locust to end its run (stopping it if it overruns), then summarise it."""
        if self.process is None:
            raise LoadError("load was never started")
        deadline = self.started + self.duration_s + GRACE_S
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
        finally:
            if self.process.poll() is None:
                self.stop()  # interrupted while waiting: never leave it running
        _running.discard(self)
        code = self.process.returncode
        stats = self.workdir / "locust_stats.csv"
        if not stats.exists():
            raise LoadError(f"locust ({self.load.kind} load) exited {code} without statistics; "
                            f"its log {self.log_path} ends: {self._log_tail()}")
        return LoadStats(self.load.kind, self.load.users, self.load.workers, code, read_stats(stats))

    def stop(self) -> None:
        """SIGTERM to the process group (Locust writes its statistics on it), then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def journal(self, resolve: Callable[[list[str]], dict[str, int]]) -> list[JournalEntry]:
        """Every write the source-writer users made, from every Locust process.

        ``resolve(keys)`` looks keys up in the source table: a write with an intent and no
        certain result (stopped mid-insert, a broken connection) is in the ledger as what the
        source says it is (committed with its id, or failed), never guessed.
        """
        intents: dict[str, bytes] = {}
        results: dict[str, tuple[int | None, str]] = {}
        for path in sorted(self.workdir.glob("journal-*.tsv")):
            text = path.read_text()
            lines = text.split("\n")
            cut = lines.pop()  # "" when the file ends with a newline; else a line cut short by a kill
            for n, line in enumerate(lines, 1):
                parts = line.split("\t")
                if parts[0] == "I" and len(parts) == 3:
                    intents[parts[1]] = bytes.fromhex(parts[2])
                elif parts[0] == "R" and len(parts) == 4:
                    results[parts[1]] = (None if parts[2] == "-" else int(parts[2]), parts[3])
                else:
                    raise LoadError(f"{path}:{n}: malformed journal line {line!r}")
            parts = cut.split("\t")
            if cut and parts[0] == "R" and len(parts) >= 2:
                results.pop(parts[1], None)  # its result was being written: unknown, resolved below
            elif cut and parts[0] != "I":
                raise LoadError(f"{path}:{len(lines) + 1}: malformed journal line {cut!r}")
            # A cut intent line: that row's insert had not started.
        unknown = [key for key in intents if key not in results or results[key][1] == "indeterminate"]
        found = resolve(unknown) if unknown else {}
        entries = []
        for key, digest in intents.items():
            if key in found:
                entries.append(JournalEntry(found[key], digest, "ok"))
            elif key in results and results[key][1] != "indeterminate":
                record_id, outcome = results[key]
                entries.append(JournalEntry(record_id, digest, outcome))
            else:
                entries.append(JournalEntry(None, digest, "failed"))  # not in the source: never committed
        self.resolved = len(unknown)
        return entries

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None  # "N/A" when a name had no requests


def read_stats(path: Path) -> list[RequestStats]:
    """Locust's ``*_stats.csv``: one row per request name and an ``Aggregated`` row."""
    with path.open(newline="") as handle:
        return [RequestStats(name=row["Name"], type=row["Type"], requests=int(row["Request Count"]),
                             failures=int(row["Failure Count"]), rps=_number(row["Requests/s"]),
                             p50_ms=_number(row["50%"]), p95_ms=_number(row["95%"]), p99_ms=_number(row["99%"]),
                             max_ms=_number(row["Max Response Time"]))
                for row in csv.DictReader(handle)]
