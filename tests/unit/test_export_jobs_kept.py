"""Finished export jobs are kept per user, bounded by count and age, and keeping one more costs
the same however many are kept: the bound was enforced by walking every finished job of every
user under the lock each job's poll takes, on each job's end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.config import Config
from exporter.jobs import Job, JobManager, JobSpec


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[JobManager]:
    config = Config(postgres_dsn="postgresql://x@127.0.0.1:1/x", redis_url="redis://127.0.0.1:1",
                    kafka_bootstrap="127.0.0.1:1", export_dir=str(tmp_path), jobs_kept=3, jobs_kept_s=60)
    found = JobManager(config)
    yield found
    found.close()


def finish(manager: JobManager, user: str, n: int, at: float | None = None) -> str:
    job = Job(f"{user}-{n}", JobSpec(user, "jsonl", "utf-8", "file", f"{n}.jsonl"), state="completed",
              finished_at=time.time() if at is None else at)
    manager.jobs[job.id] = job
    manager._finish(job)
    return job.id


def test_each_user_keeps_their_last_finished_jobs_whatever_another_user_runs(manager: JobManager) -> None:
    mine = [finish(manager, "alice", n) for n in range(5)]
    theirs = [finish(manager, "bob", n) for n in range(50)]
    assert [j["id"] for j in manager.listing("alice")] == mine[-3:]
    assert [j["id"] for j in manager.listing("bob")] == theirs[-3:]
    assert manager.lookup(mine[0], "alice") is None and manager.lookup(mine[-1], "alice") is not None
    assert manager.lookup(mine[-1], "bob") is None  # another user's is as good as absent
    assert manager.jobs == {}


def test_finished_jobs_older_than_the_age_bound_are_forgotten(manager: JobManager) -> None:
    old = finish(manager, "alice", 1, at=time.time() - 120)
    kept = finish(manager, "alice", 2)
    assert [j["id"] for j in manager.listing("alice")] == [kept] and manager.lookup(old, "alice") is None
    # Forgetting one by age leaves the count bound right: three more are kept, not two.
    more = [finish(manager, "alice", n) for n in range(3, 6)]
    assert [j["id"] for j in manager.listing("alice")] == more


def test_keeping_one_more_finished_job_costs_the_same_with_thousands_kept(tmp_path: Path) -> None:
    config = Config(postgres_dsn="postgresql://x@127.0.0.1:1/x", redis_url="redis://127.0.0.1:1",
                    kafka_bootstrap="127.0.0.1:1", export_dir=str(tmp_path), jobs_kept=100_000)
    manager = JobManager(config)
    try:
        def cost(user: str) -> float:  # the fastest of five: a busy machine slows some, not all
            times = []
            for n in range(5):
                started = time.perf_counter()
                finish(manager, user, n)
                times.append(time.perf_counter() - started)
            return min(times)

        few = cost("warm")
        for n in range(20_000):
            finish(manager, f"user{n % 50}", n)
        many = cost("late")
    finally:
        manager.close()
    # Walking 20,000 kept jobs on each end made it hundreds of times dearer.
    assert many < few * 20, (few, many)
