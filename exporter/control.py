"""What the pipeline's workers share: the control flags the service sets, the retry backoff and
the dead-letter count."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context

from exporter import metrics
from exporter.buffer import DeadLetter

log = logging.getLogger("exporter.pipeline")  # one logger for the pipeline's workers, wherever they live


class Control:
    """State shared by the main process and the reader and deliverer processes.

    Process-safe primitives: the reader and deliverer run in processes of their own so the
    two halves of the pipeline use both cores instead of taking turns on one GIL.
    CLOCK_MONOTONIC is system-wide, so a deadline set here means the same in a child.
    """

    def __init__(self, ctx: multiprocessing.context.BaseContext | None = None) -> None:
        ctx = ctx or multiprocessing.get_context("spawn")
        self.stop = ctx.Event()
        self.pause_requested = ctx.Event()
        self.reader_idle = ctx.Event()
        self.deliverer_idle = ctx.Event()
        self._deadline = ctx.Value("d", 0.0)

    @property
    def pause_deadline(self) -> float | None:
        value = self._deadline.value
        return value if value > 0 else None

    @pause_deadline.setter
    def pause_deadline(self, value: float | None) -> None:
        self._deadline.value = value or 0.0

    def deadline(self) -> float | None:
        return self.pause_deadline if self.pause_requested.is_set() else None

    def wait(self, seconds: float) -> None:
        self.stop.wait(seconds)


def backoff(attempt: int, cap: float) -> float:
    return min(cap, 0.05 * (2 ** min(attempt, 10)))


def count_dead(letter: DeadLetter) -> None:
    metrics.records_dead_lettered.labels(reason=letter.reason).inc()
    log.error("record dead-lettered", extra={"record_id": letter.record_id, "stage": letter.stage,
                                             "reason": letter.reason, "cause": letter.detail})
