"""Export jobs that fail for a reason other than the disk leave nothing behind (found by explore:
a statement timeout during an export left its .partial file in the user's directory)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from exporter.config import Config
from exporter.jobs import Job, JobManager, JobSpec


def test_a_source_error_mid_export_removes_the_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(postgres_dsn="postgresql://x@127.0.0.1:1/x", redis_url="redis://127.0.0.1:1",
                    kafka_bootstrap="127.0.0.1:1", export_dir=str(tmp_path))
    manager = JobManager(config)

    def rows(_spec: JobSpec):  # noqa: ANN202 - the source answers a page, then cancels the statement
        for n in range(1, 1501):
            yield n, f"k{n}", b"payload"
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    monkeypatch.setattr(manager, "_rows", rows)
    job = Job("j1", JobSpec("alice", "jsonl", "utf-8", "file", "out.jsonl"))
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            manager._to_file(job, manager.buffer)
    finally:
        manager.close()
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []  # no final file, no partial
    assert job.rows_written == 0
