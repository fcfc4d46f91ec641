"""Scenarios on N stacks at once (``faultline run -j N``, ``explore -j N``, ``mutants -j N``).

Each job gets a stack of its own, never a namespace on a shared one: a fault on a server (a
broker killed, Postgres frozen, Redis answering errors, a failover, a full disk) reaches every
client of that server, so two scenarios sharing it would judge each other's faults. What a
machine pays for that is memory (a Kafka JVM per stack), which is what ``choose_jobs`` weighs.

A pool of stacks is started side by side (a stack that does not start stops the run: -j N is a
promise of N stacks), and a job leases a free stack for as long as it runs. With one stack the
job runs in the caller's thread, exactly as before -j existed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

import psutil

from harness.errors import HarnessError
from harness.infra.stack import Stack
from harness.report.result import ScenarioResult

T = TypeVar("T")
R = TypeVar("R")

STACK_MEMORY = 2 * 2**30  # a stack's footprint with headroom: Kafka's JVM (-Xmx1g), Postgres, Redis, exporter
MAX_CHOSEN = 3  # more stacks than this are asked for, never chosen: each adds a JVM's start and GC
POLL_S = 0.5  # how often a waiting caller wakes, so that Ctrl-C reaches it


@dataclass(frozen=True)
class Jobs:
    """How many stacks a run plays on, and why that many (said in every report)."""

    n: int
    why: str

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 16:
            raise HarnessError(f"-j must be within 1..16, not {self.n}")


SHARED_SERVERS = ("external",)  # backends whose servers every stack shares: a server fault reaches them all


def choose_jobs(asked: int | None, items: int | None = None, backend: str = "local") -> Jobs:
    """``asked`` stacks, or as many as the machine holds: most of a scenario is waiting (a
    fault's window, a drain), so one stack per core keeps the cores busy; memory caps it. Never
    more stacks than ``items`` to play on them (a stack nobody uses is a JVM started for nothing).
    On a backend whose servers are shared (``external``) one: a server fault would cross."""
    most = items if items is not None and items > 0 else 16
    if backend in SHARED_SERVERS:
        if asked is not None and asked > 1:
            raise HarnessError(f"-j {asked} on the {backend} backend: its servers are shared by every stack, so a "
                               "fault on one (a restart, an error injected, a lock) would reach the scenarios of the "
                               "others; run with -j 1")
        return Jobs(1, f"the {backend} backend's servers are shared: one scenario at a time")
    if asked is not None:
        n = min(asked, most)
        return Jobs(n, f"asked for (-j {asked})" + (f", {n} with {items} to play" if n < asked else ""))
    cores = os.cpu_count() or 1
    available = psutil.virtual_memory().available
    by_memory = max(1, int(available // STACK_MEMORY))
    n = max(1, min(cores, by_memory, MAX_CHOSEN, most))
    return Jobs(n, f"chosen from the machine: {cores} cores, {available / 2**30:.1f} GiB available "
                   f"({STACK_MEMORY // 2**30} GiB a stack), at most {MAX_CHOSEN}"
                   + (f", and {items} to play" if n == most else ""))


class StackPool:
    """Started stacks, each leased by one job at a time."""

    def __init__(self, stacks: Sequence[Stack]) -> None:
        if not stacks:
            raise HarnessError("a pool needs at least one stack")
        self.stacks = list(stacks)
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for number in range(len(self.stacks)):
            self._free.put(number)

    @property
    def size(self) -> int:
        return len(self.stacks)

    @contextlib.contextmanager
    def lease(self) -> Iterator[tuple[int, Stack]]:
        """A free stack and its number (1-based, as reports say it), back to the pool afterwards."""
        number = self._free.get()
        try:
            yield number + 1, self.stacks[number]
        finally:
            self._free.put(number)


@contextlib.contextmanager
def started_pool(start: Callable[[], AbstractContextManager[Stack]], jobs: Jobs) -> Iterator[StackPool]:
    """``jobs.n`` stacks started side by side (each ``start()``), torn down together on the way
    out; the first that fails to start stops the run once the others are down again."""
    with contextlib.ExitStack() as exits:
        if jobs.n == 1:
            yield StackPool([exits.enter_context(start())])
            return
        managers = [start() for _ in range(jobs.n)]
        starting = ThreadPoolExecutor(jobs.n, thread_name_prefix="stack-start")
        futures = [starting.submit(manager.__enter__) for manager in managers]
        try:
            wait(futures)
        finally:  # Ctrl-C included: every start ends, and every stack that started is torn down
            starting.shutdown(wait=True)
            for manager, future in zip(managers, futures, strict=True):
                if future.exception() is None:
                    exits.push(manager.__exit__)
        failures = [exc for future in futures if (exc := future.exception()) is not None]
        for failure in failures:
            if not isinstance(failure, Exception):
                raise failure  # Ctrl-C or an exit during a start: not a stack's fault, passed on as it is
        if failures:
            raise HarnessError(f"{len(failures)} of {jobs.n} stacks did not start: {failures[0]}") from failures[0]
        yield StackPool([future.result() for future in futures])


def _waited(futures: set[Future[R]]) -> set[Future[R]]:
    """The futures done so far (at least one), woken every POLL_S so that Ctrl-C is felt."""
    while True:
        done, _pending = wait(futures, timeout=POLL_S, return_when=FIRST_COMPLETED)
        if done:
            return done


def play_all(pool: StackPool, items: Sequence[T], play: Callable[[int, Stack, T], R | None],
             stop: Callable[[], bool] = lambda: False) -> list[R | None]:
    """``play(stack number, stack, item)`` for each item, on whichever stack is free, results in
    the items' order; an item reached once ``stop()`` holds is not played (None). A job's
    exception stops the others from starting new items and is raised once they are done."""
    results: list[R | None] = [None] * len(items)
    if pool.size == 1:
        with pool.lease() as (number, stack):
            for index, item in enumerate(items):
                if stop():
                    break
                results[index] = play(number, stack, item)
        return results
    failed = threading.Event()

    def job(index: int) -> None:
        if stop() or failed.is_set():
            return
        with pool.lease() as (number, stack):
            try:
                results[index] = play(number, stack, items[index])
            except BaseException:
                failed.set()
                raise

    jobs = ThreadPoolExecutor(pool.size, thread_name_prefix="scenario")
    try:
        pending = {jobs.submit(job, index) for index in range(len(items))}
        while pending:
            done = _waited(pending)
            pending -= done
            for future in done:
                future.result()  # the first job's exception (the others see ``failed`` and start nothing)
    except BaseException:  # a job's failure or Ctrl-C: nothing new starts, the running ones end and heal
        failed.set()
        raise
    finally:
        jobs.shutdown(wait=True, cancel_futures=True)
    return results


def stamped(result: ScenarioResult, stack: int, began: float, started: float) -> ScenarioResult:
    """Which stack ran it and when it started, seconds into the run: what ran beside what."""
    result.stack = stack
    result.started_s = round(started - began, 3)
    return result
