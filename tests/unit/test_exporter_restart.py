"""A killed exporter is restarted beside the timeline; everyone who asks for it meanwhile waits
for the restart (found by explore: only the first caller waited, and the judge, asking second,
counted one start for one planned kill and reported the exporter dead)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.model.target import TargetDefinition
from harness.play.run import Run
from harness.scenario import Scenario, Workload


class SlowStart:
    start_timeout = 5.0

    def __init__(self, fails: bool = False) -> None:
        self.starts, self.fails = 1, fails

    def start(self) -> None:
        time.sleep(0.3)
        if self.fails:
            raise HarnessError("exporter: not ready")
        self.starts += 1


class Stack:
    kafka_client_id = "c"
    redis_sentinel = None

    def postgres_dsn(self, proxied: bool = False) -> str:
        return "postgresql://x@127.0.0.1:1/x"

    exporter_postgres_dsn = postgres_dsn

    def exporter_redis_url(self, proxied: bool = True) -> str:
        return "redis://127.0.0.1:1"

    def kafka_bootstrap(self, proxied: bool = True) -> str:
        return "127.0.0.1:1"


def make_run(tmp_path: Path, exporter: SlowStart) -> Run:
    run = Run(Stack(), TargetDefinition.load(), Scenario("r", "d", workload=Workload(records=10)),  # type: ignore[arg-type]
              tmp_path)
    run.exporter = exporter  # type: ignore[assignment]
    return run


def test_every_caller_waits_for_the_restart(tmp_path: Path) -> None:
    exporter = SlowStart()
    run = make_run(tmp_path, exporter)
    run.restart_exporter_beside()
    seen: list[int] = []
    callers = [threading.Thread(target=lambda: seen.append(run.live_exporter().starts)) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=10)
    assert seen == [2, 2, 2]
    assert run.live_exporter().starts == 2 and run.settle_restart() is None


def test_a_failed_restart_is_everyones_error_and_the_cleanups_note(tmp_path: Path) -> None:
    run = make_run(tmp_path, SlowStart(fails=True))
    run.restart_exporter_beside()
    with pytest.raises(HarnessError, match="not ready"):
        run.live_exporter()
    with pytest.raises(HarnessError, match="not ready"):
        run.live_exporter()
    assert "not ready" in (run.settle_restart() or "")
