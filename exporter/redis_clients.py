"""The buffer's Redis client: at ``redis_url``'s address, or at the primary Sentinel names.

Neither retries silently (redis-py's default is three tries with backoff): every failure reaches
the exporter's own retry loop, which logs and counts it. Through Sentinel, redis-py asks the
sentinels for the primary whenever it opens a connection, and turns a READONLY answer (the node
it was talking to has been demoted) into a ConnectionError: the retry finds the new primary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

from exporter.config import Config


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


@dataclass
class RedisClients:
    """``client`` for commands; ``sentinels``: the connections that find the primary (none when
    ``redis_url`` names it), closed with it."""

    client: redis.Redis
    sentinels: list[redis.Redis] = field(default_factory=list)

    def close(self) -> None:
        for connection in (self.client, *self.sentinels):
            connection.close()


def connect(config: Config, timeout: float) -> RedisClients:
    bounds: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": _no_retry()}
    if not config.redis_sentinels:
        return RedisClients(redis.Redis.from_url(config.redis_url, health_check_interval=0, **bounds))
    # The URL's credentials and database: its address is the sentinels' to give.
    url = parse_url(config.redis_url)
    credentials: dict[str, Any] = {key: url[key] for key in ("username", "password", "db") if key in url}
    sentinel = Sentinel(config.sentinel_addresses, sentinel_kwargs={**bounds, "retry": _no_retry()})
    client = sentinel.master_for(config.redis_sentinel_service, health_check_interval=0, **bounds, **credentials)
    return RedisClients(client, list(sentinel.sentinels))
