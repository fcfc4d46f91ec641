"""The workload writes the way applications do: a multi-row INSERT, an INSERT per row, or a COPY
in one transaction (whose rows share one commit), each write acknowledged with its id."""

from __future__ import annotations

import psycopg
import pytest

from harness.rig.exporter_process import RunContext
from harness.rig.workload import SourceWriter

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(60)]


@pytest.mark.parametrize("mode", ["single", "multi", "copy"])
def test_each_write_mode_acknowledges_every_row_with_its_id(run_ctx: RunContext, mode: str) -> None:
    writer = SourceWriter(run_ctx.stack, run_ctx.source_table, write=mode)  # type: ignore[arg-type]
    rows = [(f"k{i % 3}", f"row {i}".encode()) for i in range(25)]
    written = writer.insert(rows)
    assert [w.outcome for w in written] == ["ok"] * 25
    with psycopg.connect(run_ctx.stack.postgres_dsn(proxied=False)) as conn:
        query = f'SELECT id, key, payload, xmin::text FROM "{run_ctx.source_table}" ORDER BY id'
        stored = conn.execute(query).fetchall()  # type: ignore[call-overload]
    assert [(w.record_id, w.key, w.payload) for w in written] == [(i, k, bytes(p)) for i, k, p, _x in stored]
    commits = {x for *_r, x in stored}
    assert len(commits) == (25 if mode == "single" else 1), f"{mode}: {len(commits)} transactions"


def test_a_refused_connection_fails_every_row_of_the_chunk(run_ctx: RunContext) -> None:
    writer = SourceWriter(None, run_ctx.source_table, dsn="postgresql://nobody@127.0.0.1:1/x", write="copy")
    written = writer.insert([("k", b"a"), ("k", b"b")])
    assert [w.outcome for w in written] == ["failed", "failed"] and all(w.record_id is None for w in written)


def test_single_row_writes_into_a_locked_table_stop_at_the_first_refusal(run_ctx: RunContext) -> None:
    """A SHARE lock held by a fault: the first INSERT waits out its lock timeout and is refused;
    the rest of the chunk is not sent (it would wait a lock timeout each: explore hung five
    minutes on 300 of them)."""
    import time

    writer = SourceWriter(run_ctx.stack, run_ctx.source_table, write="single")
    with psycopg.connect(run_ctx.stack.postgres_dsn(proxied=False)) as holder:
        holder.execute(f'LOCK TABLE "{run_ctx.source_table}" IN SHARE MODE')  # type: ignore[arg-type]
        started = time.monotonic()
        written = writer.insert([("k", f"row {i}".encode()) for i in range(20)])
        waited = time.monotonic() - started
    assert [w.outcome for w in written] == ["failed"] * 20 and waited < 5, waited
    assert [w.outcome for w in writer.insert([("k", b"after")])] == ["ok"]  # the lock gone: written again
