"""Locust users that write rows into the source table, each write journalled with its outcome.

A custom client (psycopg through ``harness.rig.workload.SourceWriter``) reports every write through
Locust's request event, so Locust's statistics count it; and every row goes into a per-process
journal that the harness adds to the ledger, so the loss check covers load traffic too: an
intent line (key, content hash) before the insert, a result line (key, id, outcome) after.
A row with an intent and no certain result (the user was stopped mid-insert, the connection
broke) is resolved afterwards against the source table itself.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from locust import User, constant, task

from harness.judge.ledger import content_hash
from harness.model.profiles import payloads
from harness.rig.workload import SourceWriter

ENV = os.environ
_users = itertools.count()
_journal_file = None


def _journal():  # noqa: ANN202 - one line-buffered file per process (Locust workers are processes)
    global _journal_file
    if _journal_file is None:
        path = Path(ENV["FAULTLINE_LOAD_DIR"]) / f"journal-{os.getpid()}.tsv"
        _journal_file = path.open("a", buffering=1)
    return _journal_file


class SourceWriterUser(User):
    wait_time = constant(float(ENV.get("FAULTLINE_LOAD_WAIT_S", "0.05")))

    def on_start(self) -> None:
        self.number = next(_users)
        self.written = 0
        self.rows = int(ENV.get("FAULTLINE_LOAD_ROWS", "10"))
        self.writer = SourceWriter(None, ENV["FAULTLINE_LOAD_TABLE"], dsn=ENV["FAULTLINE_LOAD_DSN"], keep_open=True)

    def on_stop(self) -> None:
        self.writer.close()

    @task
    def write_rows(self) -> None:
        start = self.written
        self.written += self.rows
        bodies = payloads(ENV.get("FAULTLINE_LOAD_PROFILE", "ascii"), self.rows,
                          int(ENV.get("FAULTLINE_LOAD_SIZE", "200")),
                          int(ENV.get("FAULTLINE_LOAD_SEED", "1")) * 1_000_003 + os.getpid() * 1009 + self.number,
                          start=start)
        prefix = f"{ENV['FAULTLINE_LOAD_PREFIX']}-{os.getpid()}-{self.number}"
        rows = [(f"{prefix}-{start + i}", body) for i, body in enumerate(bodies)]
        journal = _journal()
        journal.write("".join(f"I\t{key}\t{content_hash(body).hex()}\n" for key, body in rows))
        t0 = time.perf_counter()
        written = self.writer.insert(rows, tokens=[key for key, _ in rows])  # keys unique per write
        elapsed_ms = (time.perf_counter() - t0) * 1000
        journal.write("".join(f"R\t{w.key}\t{w.record_id if w.record_id is not None else '-'}\t{w.outcome}\n"
                              for w in written))
        outcome = written[0].outcome if written else "ok"
        self.environment.events.request.fire(
            request_type="SQL", name="insert rows", response_time=elapsed_ms, response_length=len(written),
            exception=None if outcome == "ok" else RuntimeError(f"write {outcome}"), context={})
