"""Bounded retry for transient errors, built on tenacity.

tenacity retries forever on any exception unless told otherwise: here it retries only
``TransientError``, with capped exponential backoff and jitter, and stops at a deadline the
caller gives (a stop flag or a pause deadline), never on its own say-so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_any, stop_when_event_set
from tenacity.wait import wait_exponential_jitter

from exporter import metrics
from exporter.errors import TransientError

T = TypeVar("T")
log = logging.getLogger("exporter.retry")


def _log_attempt(stage: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        metrics.retries.labels(stage=stage).inc()
        log.error("transient failure, retrying", extra={
            "stage": stage, "attempt": state.attempt_number, "error_class": exc.__class__.__name__ if exc else None,
            "cause": str(exc), "next_sleep_s": round(state.next_action.sleep, 3) if state.next_action else None})
    return before_sleep


def retry_transient(fn: Callable[[], T], *, stage: str, stop_event: object, max_backoff_s: float,
                    deadline: Callable[[], float | None] = lambda: None) -> T:
    """Call ``fn`` until it succeeds, ``stop_event`` is set, or ``deadline()`` (monotonic) passes.

    ``deadline`` is asked before every retry, so a pause requested meanwhile is honoured.

    On stop or deadline the last TransientError propagates, so nothing is silently given up.
    """
    def past_deadline(_state: RetryCallState) -> bool:
        limit = deadline()
        return limit is not None and time.monotonic() >= limit

    stop = stop_any(stop_when_event_set(stop_event), past_deadline)  # type: ignore[arg-type]
    retrying = Retrying(retry=retry_if_exception_type(TransientError), stop=stop,
                        wait=wait_exponential_jitter(initial=0.05, max=max_backoff_s, jitter=0.1),
                        before_sleep=_log_attempt(stage), reraise=True, sleep=_interruptible(stop_event))
    return retrying(fn)


def _interruptible(stop_event: object) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop_event.wait(seconds)  # type: ignore[attr-defined]
    return sleep
