"""Pause with a grace period that always ends (the incident: a pipeline stuck in 'pausing').

The grace check comes first in every pass, before anything that can fail; the buffer status
is asked once, after the decision, with its own short timeout, and its failure is reported
with its cause rather than replaced by a generic message.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass

import redis

from exporter import defects, metrics
from exporter.buffer import Buffer
from exporter.control import Control
from exporter.errors import ExporterError, TransientError

log = logging.getLogger("exporter.pause")
# The buffer's status reported with a pause is best effort once the grace is over: each command
# asking it waits at most this long, so a Redis that holds its clients adds no more than this to
# the answer (with the workers' 2 s timeout it added 2 s: answered 3 s after a 1 s grace).
PAUSE_STATUS_TIMEOUT_S = 0.5


class NotYours(ExporterError):
    """A resume of a pause another user asked for, without the right to end any pause."""


@dataclass
class PauseStatus:
    state: str = "running"  # running | pausing | paused
    drained: bool | None = None
    pending: int | None = None
    buffer_length: int | None = None
    error: str | None = None
    requested_at: float | None = None
    finished_at: float | None = None
    grace_s: float | None = None
    by: str | None = None  # the user who asked for it (None: asked without authentication, in tests)

    def to_dict(self) -> dict:
        return asdict(self)


class Pauser:
    def __init__(self, control: Control, buffer: Buffer) -> None:
        self.control = control
        self.buffer = buffer
        self.status = PauseStatus()
        self._lock = threading.Lock()

    def pause(self, grace_s: float, user: str | None = None) -> PauseStatus:
        with self._lock:
            if self.status.state == "paused":
                return self.status
            started = self._clock()
            deadline = started + grace_s
            self.status = PauseStatus(state="pausing", requested_at=time.time(), grace_s=grace_s, by=user)
            self.control.pause_deadline = deadline
            self.control.pause_requested.set()
            metrics.paused.set(1)
            log.info("pause requested", extra={"grace_s": grace_s})
            if defects.on("pause_check_after_work"):
                drained = self._wait_checking_buffer_first(deadline)
            else:
                drained = self._wait_for_idle(deadline)
            self._report(drained)
            return self.status

    @staticmethod
    def _clock() -> float:
        """The grace's clock: monotonic, which no wall-clock step moves. The seeded defect reads
        the wall clock instead: a step back while pausing puts the deadline out of reach."""
        return time.time() if defects.on("pause_grace_on_wall_clock") else time.monotonic()

    def _wait_for_idle(self, deadline: float) -> bool:
        while True:
            if self.control.reader_idle.is_set() and self.control.deliverer_idle.is_set():
                return True
            if self._clock() >= deadline:  # checked before anything that can fail
                return False
            time.sleep(0.02)

    def _wait_checking_buffer_first(self, deadline: float) -> bool:
        # The incident's shape: ask the buffer first and retry it until it answers; the grace
        # check below is never reached while the buffer keeps failing.
        while True:
            try:
                pending = self.buffer.pending_count()
            except TransientError:
                time.sleep(0.1)
                continue
            idle = self.control.reader_idle.is_set() and self.control.deliverer_idle.is_set()
            if (idle and pending == 0) or self._clock() >= deadline:
                return idle
            time.sleep(0.02)

    def _report(self, drained: bool) -> None:
        status = self.status
        status.drained = drained
        try:
            status.pending = self.buffer.pending_count()
            status.buffer_length = self.buffer.length()
        except TransientError as exc:
            status.error = f"buffer status unavailable: {exc}"
            log.error("pause: buffer status unavailable", extra={"stage": exc.stage, "cause": str(exc.cause),
                                                                 "error_class": exc.cause.__class__.__name__})
        except (ExporterError, redis.RedisError) as exc:
            # Any other answer from the buffer: the pause still ends, and says why it knows less.
            status.error = f"buffer status unavailable: {exc.__class__.__name__}: {exc}"
            log.error("pause: buffer status unavailable", extra={"stage": "pause.status", "cause": str(exc),
                                                                 "error_class": exc.__class__.__name__})
        finally:
            status.state = "paused"  # whatever the buffer answered, the pause is over: never left 'pausing'
            status.finished_at = time.time()
        log.info("paused", extra={"drained": drained, "pending": status.pending, "error": status.error})

    def resume(self, user: str | None = None, any_pause: bool = True) -> PauseStatus:
        """End the pause; ``user`` may end only a pause it asked for unless ``any_pause``."""
        with self._lock:
            owner = self.status.by
            if not any_pause and owner is not None and owner != user:
                raise NotYours(f"the pause was asked for by {owner!r}; only they (or a user with the right "
                               "resume_any) may end it")
            self.control.pause_requested.clear()
            self.control.pause_deadline = None
            metrics.paused.set(0)
            self.status = PauseStatus(state="running")
            log.info("resumed")
            return self.status
