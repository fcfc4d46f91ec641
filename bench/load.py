"""Locust load against the running exporter: export-job submissions and status polls per second,
and their p99, while the pipeline carries a continuous source workload.

Two Locust runs in subprocesses at once: source writers (rows into Postgres, so the pipeline is
busy) and API users (submit a small export job, poll it until it ends, again). Targets: at
least 500 API requests/s with the p99 of job submissions under 250 ms on this machine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.backends.local import LocalBackend
from harness.infra.waiting import wait_for
from harness.model.plugins import load_target
from harness.report.figures import Figure
from harness.report.result import RequestStats
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.rig.load import LoadRun
from harness.rig.workload import SourceWriter
from harness.scenario import Load

DURATION_S = 20
API_USERS = 60
TARGET_RPS = 500
TARGET_P99_MS = 250


def _row(rows: list[RequestStats], name: str) -> RequestStats:
    found = [r for r in rows if r.name == name]
    if not found:
        raise AssertionError(f"locust reported no {name!r} requests: {[r.name for r in rows]}")
    return found[0]


ROUNDS = 3  # rounds against one exporter: one round said little, successive invocations varying by 100 ms


def _round(common: dict, tmp: Path, n: int) -> dict:
    """One round: the source writers and the API users side by side for DURATION_S."""
    source = LoadRun(Load("source", users=2, wait_s=0.1, rows_per_write=20), DURATION_S,
                     tmp / f"source-{n}", key_prefix=f"bench-src{n}", **common).start()
    api = LoadRun(Load("api", users=API_USERS, spawn_rate=API_USERS, wait_s=0.05, rows_per_write=10),
                  DURATION_S, tmp / f"api-{n}", key_prefix=f"bench-api{n}", **common).start()
    api_summary, source_summary = api.finish(), source.finish()
    rows = api_summary.requests
    total, submit, poll = _row(rows, "Aggregated"), _row(rows, "POST /exports"), _row(rows, "GET /exports/{id}")
    writes = _row(source_summary.requests, "insert rows")
    return {"api_requests_per_s": total.rps or 0.0, "api_failures": total.failures,
            "submissions_per_s": submit.rps, "submission_p50_ms": submit.p50_ms,
            "submission_p99_ms": submit.p99_ms or 1e9, "poll_per_s": poll.rps, "poll_p99_ms": poll.p99_ms,
            "source_writes_per_s": writes.rps}


def run() -> dict:
    target = load_target()
    with LocalBackend() as stack, tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(stack, "benchload", Path(tmp) / "run")
        writer = SourceWriter(stack, ctx.source_table)
        writer.create()
        writer.insert([(f"seed-{i}", b"x" * 200) for i in range(1000)])
        exporter = ExporterProcess(target, ctx, extra_env={
            "EXPORTER_QUOTA_JOBS_PER_HOUR": "100000000", "EXPORTER_LOG_LEVEL": "WARNING"})
        try:
            exporter.start()
            wait_for(lambda: exporter.metric_total("delivered") >= 1000, timeout=60, interval=0.2,
                     what="the pipeline to deliver the first rows")
            common = {"dsn": stack.postgres_dsn(proxied=False), "table": ctx.source_table,
                      "base_url": f"http://127.0.0.1:{ctx.http_port}", "exports_path": target.exports_path,
                      "tokens_file": ctx.api_tokens_file}
            rounds = [_round(common, Path(tmp), n) for n in range(1, ROUNDS + 1)]
            delivered = exporter.metric_total("delivered")
        finally:
            exporter.close()

    def each(key: str) -> tuple[float, ...]:
        return tuple(float(r[key]) for r in rounds)

    return {
        "figures": [Figure("job API requests (submissions and status polls) from 60 Locust users", "requests/s",
                           each("api_requests_per_s"), "higher", TARGET_RPS),
                    Figure("job API: submission p99", "ms", each("submission_p99_ms"), "lower", TARGET_P99_MS),
                    Figure("job API: failed requests", "requests", each("api_failures"), "lower", 0)],
        "duration_s": DURATION_S, "api_users": API_USERS, "rounds": rounds,
        "records_delivered_meanwhile": delivered,
        "target_requests_per_s": TARGET_RPS, "target_submission_p99_ms": TARGET_P99_MS,
    }
