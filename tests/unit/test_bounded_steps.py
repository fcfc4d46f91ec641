"""The timeline never waits for ever: each step call has a deadline and yields to an interrupt,
and a run has a bound of its own (explore's budget is a promise)."""

from __future__ import annotations

import threading
import time

import pytest

from harness.infra.waiting import Deadline
from harness.play.bounded import BoundedCalls, StepInterrupted, StepOverran
from harness.scenario import Expect, HeldTransaction, PostgresLockTable, Scenario, ScenarioError, Step, Workload
from harness.search.explore_plan import clash
from harness.search.explore_run import run_limit


def test_a_call_past_its_deadline_is_given_up_on_and_undone_when_it_returns() -> None:
    interrupt, release, undone = threading.Event(), threading.Event(), []
    calls = BoundedCalls(interrupt)
    started = time.monotonic()
    with pytest.raises(StepOverran, match="did not return within its deadline of 0s"):
        calls.call("lock (apply)", lambda: release.wait(30) and "handle", 0.3, if_late=undone.append)
    assert time.monotonic() - started < 2
    release.set()  # what a closer does: end the wait
    assert calls.settle() == [] and undone == ["handle"]
    calls.close()


def test_an_interrupt_stops_the_wait_but_not_a_removal() -> None:
    interrupt, release = threading.Event(), threading.Event()
    calls = BoundedCalls(interrupt)
    interrupt.set()
    with pytest.raises(StepInterrupted):
        calls.call("apply", lambda: release.wait(30), 10)
    release.set()
    assert calls.call("remove", lambda: "removed", 5, interruptible=False) == "removed"
    assert calls.settle() == []
    calls.close()


def test_a_call_that_never_returns_is_named_after_healing() -> None:
    calls = BoundedCalls(threading.Event())
    stuck = threading.Event()
    with pytest.raises(StepOverran):
        calls.call("stuck (apply)", lambda: stuck.wait(15), 0.2)
    import harness.play.bounded as bounded

    bounded.SETTLE_S, saved = 0.2, bounded.SETTLE_S
    try:
        assert calls.settle() == ["stuck (apply): still running 0s after the run was healed"]
    finally:
        bounded.SETTLE_S = saved
        stuck.set()
        calls.close()


def test_a_deadline_interrupts_on_time_or_with_the_outer_interrupt() -> None:
    outer = threading.Event()
    with Deadline(outer, 0.3) as deadline:
        assert deadline.event.wait(5)
    assert deadline.overran
    with Deadline(outer, 60) as second:
        outer.set()
        assert second.event.wait(5)
    assert not second.overran


def test_a_run_is_bounded_by_its_schedule() -> None:
    short = Scenario(name="s", description="d", workload=Workload(records=10), during_s=4.0)
    assert 180 <= run_limit(short) <= 200


def test_a_transaction_that_would_wait_for_a_lock_is_refused_and_kept_apart() -> None:
    lock, held = PostgresLockTable(mode="SHARE"), HeldTransaction()
    with pytest.raises(ScenarioError, match="would wait for it: its rows wait for the SHARE lock"):
        Scenario(name="s", description="d", expect=Expect(), steps=(
            Step("during", lock, at=0.5, duration=2.0), Step("during", held, at=1.0, duration=1.0))).validate()
    # The other way round the lock queues behind the transaction: a real incident, played.
    Scenario(name="s", description="d", steps=(
        Step("during", held, at=0.5, duration=2.0), Step("during", lock, at=1.0, duration=1.0))).validate()
    assert clash(lock, held) and clash(held, lock)  # explore keeps the two apart either way
    assert not clash(PostgresLockTable(mode="ROW SHARE"), held)


def test_the_next_step_after_each_event_is_found_in_one_pass() -> None:
    from harness.play.player import Event, _next_steps
    from harness.scenario import LinkDown

    step = Step("during", LinkDown("kafka"), at=1.0, duration=1.0)
    events = [Event(0.0, "write", 5), Event(1.0, "apply", step=step), Event(1.5, "write", 5),
              Event(2.0, "remove", step=step), Event(2.5, "write", 5)]
    assert _next_steps(events) == [1.0, 2.0, 2.0, None, None]


def test_a_step_that_waits_by_its_parameters_gets_a_deadline_that_allows_it() -> None:
    from types import SimpleNamespace

    from harness.scenario import Checkpoint, Pause, Write

    run = SimpleNamespace(scenario=SimpleNamespace(fault_seconds=7200.0, during_s=604_800.0))
    assert Pause(grace_s=3000).deadline(run) > 3000  # type: ignore[arg-type]
    assert Checkpoint(within_s=900).deadline(run) > 900  # type: ignore[arg-type]
    assert Write(records=10_000_000).deadline(run) > 10_000  # type: ignore[arg-type]
    assert HeldTransaction().deadline(run) == 180.0  # type: ignore[arg-type]
