"""The pool behind -j: each job on a stack of its own, results in the items' order, a stop
honoured, a job's failure raised, stacks started side by side and torn down together."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from harness.catalogue.scenario import Scenario
from harness.errors import HarnessError
from harness.infra.stack import Stack
from harness.play.gate import workdirs
from harness.play.parallel import Jobs, StackPool, choose_jobs, play_all, started_pool
from harness.report.result import RunReport, ScenarioResult, Verdict, ran_beside


def pool_of(n: int) -> StackPool:
    return StackPool([cast(Stack, f"stack-{i}") for i in range(n)])


def test_every_item_is_played_once_and_results_keep_the_items_order() -> None:
    played: list[int] = []
    lock = threading.Lock()

    def play(_number: int, _stack: Stack, item: int) -> int:
        time.sleep(0.001 * (10 - item))  # later items finish first
        with lock:
            played.append(item)
        return item * item

    assert play_all(pool_of(3), list(range(10)), play) == [i * i for i in range(10)]
    assert sorted(played) == list(range(10))


def test_no_stack_is_leased_to_two_jobs_at_once_and_every_stack_works() -> None:
    busy: set[str] = set()
    used: set[str] = set()
    clash: list[str] = []
    lock = threading.Lock()

    def play(number: int, stack: Stack, _item: int) -> int:
        name = cast(str, stack)
        with lock:
            if name in busy:
                clash.append(name)
            busy.add(name)
            used.add(name)
        time.sleep(0.02)
        with lock:
            busy.discard(name)
        assert name == f"stack-{number - 1}"  # the number reports give is the stack's
        return number

    numbers = play_all(pool_of(3), list(range(12)), play)
    assert clash == []
    assert used == {"stack-0", "stack-1", "stack-2"}
    assert set(numbers) == {1, 2, 3}


def test_items_reached_after_stop_are_not_played() -> None:
    stop = threading.Event()

    def play(_number: int, _stack: Stack, item: int) -> int:
        if item == 2:
            stop.set()
        return item

    results = play_all(pool_of(1), list(range(6)), play, stop=stop.is_set)
    assert results == [0, 1, 2, None, None, None]
    parallel = play_all(pool_of(2), list(range(40)), lambda _n, _s, item: (stop.set(), item)[1], stop=stop.is_set)
    assert parallel.count(None) == 40  # stop already holds: nothing starts


def test_a_jobs_failure_is_raised_and_stops_new_items() -> None:
    started: list[int] = []

    def play(_number: int, _stack: Stack, item: int) -> int:
        started.append(item)
        if item == 1:
            raise HarnessError("stack 2 broke")
        time.sleep(0.05)
        return item

    with pytest.raises(HarnessError, match="stack 2 broke"):
        play_all(pool_of(2), list(range(20)), play)
    assert len(started) < 20


class FakeBackend:
    """A context manager like a backend's: enters (starts), exits (tears down), or fails to start."""

    def __init__(self, log: list[str], name: str, fail: bool = False,
                 together: threading.Barrier | None = None) -> None:
        self.log, self.name, self.fail, self.together = log, name, fail, together

    def __enter__(self) -> Stack:
        if self.together is not None:
            self.together.wait()  # breaks (an error) unless every stack is starting at the same time
        if self.fail:
            raise HarnessError(f"{self.name}: Kafka did not start")
        self.log.append(f"up {self.name}")
        return cast(Stack, self.name)

    def __exit__(self, *exc: Any) -> None:
        self.log.append(f"down {self.name}")


def test_stacks_start_side_by_side_and_are_all_torn_down() -> None:
    log: list[str] = []
    names = iter(["a", "b", "c"])
    together = threading.Barrier(3, timeout=10)
    with started_pool(lambda: FakeBackend(log, next(names), together=together), Jobs(3, "asked")) as pool:
        assert sorted(cast(list[str], pool.stacks)) == ["a", "b", "c"]
    assert sorted(entry for entry in log if entry.startswith("down")) == ["down a", "down b", "down c"]


def test_a_stack_that_does_not_start_stops_the_run_after_the_others_are_down() -> None:
    log: list[str] = []
    names = iter(["a", "b", "c"])

    @contextlib.contextmanager
    def never_entered() -> Iterator[None]:
        raise AssertionError("the run must not start")
        yield

    with pytest.raises(HarnessError, match=r"1 of 3 stacks did not start: b: Kafka did not start"):
        with started_pool(lambda: FakeBackend(log, (name := next(names)), fail=name == "b"), Jobs(3, "asked")):
            with never_entered():
                pass
    assert sorted(entry for entry in log if entry.startswith("down")) == ["down a", "down c"]


class InterruptedBackend(FakeBackend):
    def __enter__(self) -> Stack:
        raise KeyboardInterrupt


def test_ctrl_c_while_stacks_start_tears_down_the_ones_that_started() -> None:
    log: list[str] = []
    names = iter(["a", "b", "c"])

    def start() -> FakeBackend:
        name = next(names)
        return InterruptedBackend(log, name) if name == "b" else FakeBackend(log, name)

    with pytest.raises(KeyboardInterrupt):
        with started_pool(start, Jobs(3, "asked")):
            raise AssertionError("the run must not start")
    assert sorted(log) == ["down a", "down c", "up a", "up c"]


def test_jobs_are_chosen_from_the_machine_and_never_exceed_the_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    memory = type("Memory", (), {"available": 5 * 2**30})
    monkeypatch.setattr("psutil.virtual_memory", lambda: memory)
    chosen = choose_jobs(None, 40)
    assert chosen.n == 2 and "5.0 GiB available" in chosen.why  # memory caps 8 cores at 2 stacks
    memory.available = 64 * 2**30
    assert choose_jobs(None, 40).n == 3  # never more than MAX_CHOSEN unasked
    assert choose_jobs(None, 1).n == 1
    assert choose_jobs(5, 40) == Jobs(5, "asked for (-j 5)")
    assert choose_jobs(5, 2).n == 2
    with pytest.raises(HarnessError, match="-j must be within 1..16"):
        Jobs(0, "")


def result(name: str, stack: int, started: float, duration: float) -> ScenarioResult:
    return ScenarioResult(name, "", None, verdict=Verdict.PASS, stack=stack, started_s=started, duration_s=duration)


def test_beside_names_what_overlapped_on_other_stacks() -> None:
    results = [result("a", 1, 0, 10), result("b", 2, 5, 10), result("c", 1, 10, 4), result("d", 2, 16, 1)]
    assert ran_beside(results) == {"a": ["b"], "b": ["a", "c"], "c": ["b"]}
    report = RunReport(run_id="r", target="t.toml", backend="local", verdict=Verdict.PASS, duration_s=20,
                       scenarios=results, jobs=2)
    assert report.beside == ran_beside(results)  # derived when not given


def test_a_scenario_played_twice_gets_a_directory_for_each_play() -> None:
    one, two = Scenario(name="one", description="a"), Scenario(name="two", description="b")
    assert workdirs(Path("w"), [one, two, one, one]) == [Path("w"), Path("w"), Path("w/2"), Path("w/3")]


def test_a_backend_whose_servers_are_shared_plays_one_at_a_time() -> None:
    assert choose_jobs(None, 40, "external") == Jobs(1, "the external backend's servers are shared: one scenario "
                                                        "at a time")
    assert choose_jobs(1, 40, "external").n == 1
    with pytest.raises(HarnessError, match="-j 2 on the external backend: its servers are shared"):
        choose_jobs(2, 40, "external")
