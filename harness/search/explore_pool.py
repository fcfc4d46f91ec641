"""Explore's runs on N stacks at once (``explore -j N``), drawn as one serial explore draws them.

A run's schedule is drawn from the seed, the schedules before it and the *guidance* (the corpus
of schedules that showed a new reaction, the faults that reached nothing) of the runs up to
``GUIDANCE_LAG`` before it. A fixed lag is what keeps determinism per seed and run with stacks
side by side: run k never waits on runs k-1 and k-2 that may still be playing on other stacks,
and never sees them either, whether they finished first or not. So a seed draws the same
schedules at -j 1, 2 and 3 (at -j N above the lag, the lag is N, and says so in the report).

Runs are judged in run order as soon as every run before them ended (progress, coverage,
failures); their guidance is applied when the lag reaches it. A failure that ends exploring stops
the drawing at once; the runs beside it finish and are judged as any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TypeVar

from harness.catalogue.scenario import Scenario
from harness.play.parallel import POLL_S
from harness.report.result import ScenarioResult

T = TypeVar("T")

GUIDANCE_LAG = 3  # the runs a draw may not see: -j 1..3 draw alike (parallel.MAX_CHOSEN is 3 too)


def guidance_lag(stacks: int) -> int:
    return max(GUIDANCE_LAG, stacks)


class InlineExecutor(Executor):
    """One stack: each run plays in the caller's thread when submitted, as explore always did."""

    def submit(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 (handed to whoever reads the future, as a pool would)
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def executor_for(stacks: int) -> Iterator[Executor]:
    if stacks == 1:
        yield InlineExecutor()
        return
    pool = ThreadPoolExecutor(stacks, thread_name_prefix="explore")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Played:
    run: int
    scenario: Scenario
    mutated: bool
    future: Future[ScenarioResult]


@dataclass
class InFlight:
    """Runs handed to the stacks in run order; ``ripe`` gives them back in run order once they
    (and every run before them) have ended; ``guidance`` holds what judged runs teach the draws
    until the lag lets it in."""

    stacks: int
    lag: int
    queue: list[Played] = field(default_factory=list)
    guidance: list[tuple[int, Callable[[], None]]] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return sum(not p.future.done() for p in self.queue) >= self.stacks

    def ripe(self) -> Iterator[Played]:
        while self.queue and self.queue[0].future.done():
            yield self.queue.pop(0)

    def wait_one(self) -> None:
        """Until one more of the runs in flight ends (woken every POLL_S so that Ctrl-C is felt)."""
        running = {p.future for p in self.queue if not p.future.done()}
        while running and not wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)[0]:
            continue

    def blocking(self, next_run: int) -> bool:
        """Whether a run the draw of ``next_run`` must see is still unjudged."""
        return bool(self.queue) and self.queue[0].run <= next_run - self.lag

    def teach(self, next_run: int) -> None:
        """Apply, in run order, the guidance of the runs the draw of ``next_run`` sees."""
        while self.guidance and self.guidance[0][0] <= next_run - self.lag:
            self.guidance.pop(0)[1]()
