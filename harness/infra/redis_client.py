"""The harness's Redis clients: redis-py retries a failed command silently by default (three
times, with backoff); every harness read must see the failure instead, so it is reported, never
taken for "nothing there"."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def direct_client(url: str, timeout: float) -> redis.Redis:
    """A client of ``url`` whose every failure surfaces at once (no retries), within ``timeout``."""
    return redis.Redis.from_url(url, retry=no_retry(), socket_timeout=timeout, socket_connect_timeout=timeout)
