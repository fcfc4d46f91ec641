"""The timeline keeps its fault windows while an action waits (found by explore: an export job
waited inline for its answer, so a table lock meant for 1.6 s stayed held for 30 s)."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
from pydantic.dataclasses import dataclass

from harness.scenario import (
    Checkpoint,
    Expect,
    Export,
    HeldTransaction,
    LinkDown,
    Pause,
    PostgresLockTable,
    Resume,
    Scenario,
    Step,
    Workload,
)
from harness.steps.base import STRICT, StepKind
from harness.steps.load import Load
from harness.steps.registry import step_kind

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(180)]

WINDOW_S = 1.0
SCENARIO = Scenario(
    name="pause_waits_beside_a_fault",
    description="Kafka down for 1s; a pause with 4s of grace asked inside it cannot drain until it ends",
    workload=Workload(records=300, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.5, duration=WINDOW_S),
        Step("during", Pause(grace_s=4.0), at=0.7),
        Step("after", Resume()),
    ),
    expect=Expect(pause_within_grace=False),
    during_s=3.0,
)


def test_a_waiting_action_never_holds_a_fault_window_open(run_scenario) -> None:  # noqa: ANN001
    result = run_scenario(SCENARIO)
    link = next(s for s in result.steps if "link down" in s.description)
    pause = next(s for s in result.steps if s.description.startswith("pause"))
    assert link.applied_at is not None and link.removed_at is not None and pause.applied_at is not None
    held = link.removed_at - link.applied_at
    assert held < WINDOW_S + 0.7, f"the {WINDOW_S}s window was held {held:.2f}s (the pause waited inline)"
    assert pause.applied_at < link.removed_at  # the pause was asked inside the window it waited through
    assert result.error is None and result.verdict.value == "pass", result.violations


RESUME_EARLY = Scenario(
    name="resume_asked_before_the_pause_answered",
    description="A pause whose grace runs past the time its resume is due: the resume still comes after it",
    workload=Workload(records=300, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.3, duration=3.0),
        Step("during", Pause(grace_s=2.5), at=0.5),
        Step("during", Resume(), at=1.0),  # due while the pause still waits for its grace
    ),
    expect=Expect(pause_within_grace=False),
    during_s=3.5,
)


def test_a_resume_is_asked_only_after_the_pause_before_it_answered(run_scenario) -> None:  # noqa: ANN001
    """Failed before its fix: the pause waited beside the timeline and the resume, asked inline,
    overtook it; the exporter then paused for good and kept the rest in its buffer."""
    result = run_scenario(RESUME_EARLY)
    pause = next(s for s in result.steps if s.description.startswith("pause"))
    resume = next(s for s in result.steps if s.description == "resume")
    assert pause.result is not None and resume.applied_at is not None and pause.applied_at is not None
    assert resume.applied_at >= pause.applied_at + pause.result["elapsed_s"] - 0.05
    assert result.error is None and result.verdict.value == "pass", [c.detail for c in result.violations]


EXPORT_DURING_LOAD = Scenario(
    name="export_during_locust_load",
    description="A Locust source load writes while an export job reads the whole table",
    workload=Workload(records=200, chunk=50),
    steps=(
        Step("during", Load(kind="source", users=4, wait_s=0.05, rows_per_write=5), at=0.2, duration=3.0),
        Step("during", Export("during-load.jsonl", expect_state="either"), at=1.5),
    ),
    expect=Expect(),
    during_s=3.5,
)


def test_an_export_during_a_load_knows_the_rows_the_load_wrote(run_scenario) -> None:  # noqa: ANN001
    """Failed before its fix (found by explore): the load's rows reach the ledger when it ends, so
    the export check called the ones the job exported "unexpected"."""
    result = run_scenario(EXPORT_DURING_LOAD)
    export = next(c for c in result.checks if c.name.startswith("export:"))
    assert export.ok and "every row intact" in export.detail, export.detail
    assert result.verdict.value == "pass", [c.detail for c in result.violations]


LOCK_BEHIND_TRANSACTION = Scenario(
    name="lock_queued_behind_a_held_transaction",
    description="A transaction held open 0.5-3.5 s; an ACCESS EXCLUSIVE lock asked at 1.0 for 1.0 s queues "
                "behind it (explore's Debezium seed 7 run 5 hung here for ever)",
    workload=Workload(records=200, chunk=40, meet_faults=20, write="copy"),
    steps=(
        Step("during", HeldTransaction(records=5, then_write=10), at=0.5, duration=3.0),
        Step("during", PostgresLockTable(mode="ACCESS EXCLUSIVE"), at=1.0, duration=1.0),
        Step("during", Checkpoint(within_s=5.0), at=1.2),
    ),
    expect=Expect(),
    during_s=4.0,
)


def test_a_lock_queued_behind_a_later_commit_never_stops_the_timeline(run_scenario) -> None:  # noqa: ANN001
    """Failed before (the timeline waited in the lock's apply for the transaction, whose commit
    was its own later event): the scenario never ended. Now the lock is asked on a session of its
    own and its window is kept; the exporter loses nothing."""
    import time

    started = time.monotonic()
    result = run_scenario(LOCK_BEHIND_TRANSACTION)
    took = time.monotonic() - started
    lock = next(s for s in result.steps if s.description.startswith("postgres table lock"))
    assert "queued behind pid(s)" in lock.evidence and "never granted in its window" in lock.evidence, lock.evidence
    assert lock.removed_at is not None and lock.applied_at is not None
    assert lock.removed_at - lock.applied_at < 1.0 + 1.0, "the lock's window was not kept"
    assert result.error is None and result.verdict.value == "pass", (result.error, result.violations)
    assert took < 90, took


@step_kind
@dataclass(frozen=True, config=STRICT)
class WaitsForEver(StepKind):
    """A team's fault whose apply never returns (it waits on an event that never comes)."""

    kind_name: ClassVar[str] = "test_waits_for_ever"
    deadline_s: ClassVar[float] = 2.0

    def apply(self, run, record):  # noqa: ANN001, ANN201
        run.closers.append(RELEASE.set)  # what a real step's closer does: end the wait
        RELEASE.wait(60)
        return None


RELEASE = threading.Event()


def test_a_step_that_never_returns_is_given_up_on_and_healed(run_scenario) -> None:  # noqa: ANN001
    RELEASE.clear()
    scenario = Scenario(name="step_never_returns", description="a fault whose apply waits for ever",
                        workload=Workload(records=100, chunk=50),
                        steps=(Step("during", WaitsForEver(), at=0.3, duration=1.0),), during_s=2.0)
    result = run_scenario(scenario)
    assert result.verdict.value == "error" and "did not return within its deadline of 2s" in (result.error or "")
    assert RELEASE.is_set()  # the closers ran, and the abandoned apply returned (no thread left waiting)
