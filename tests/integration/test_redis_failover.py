"""The local backend's Redis replica on real servers: in sync through its own replication link,
behind once that link is cut, promoted with the clients' proxy following it, and put away again
by the next reset, the original primary serving."""

from __future__ import annotations

import pytest
import redis

from harness.infra.redis_client import direct_client
from harness.infra.stack import Stack

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(120)]


def _role(url: str) -> str:
    client = direct_client(url, 5)
    try:
        return str(client.info("replication")["role"])
    finally:
        client.close()


def test_a_failover_loses_what_never_reached_the_replica_and_a_reset_puts_it_away(fresh_stack: Stack) -> None:
    if fresh_stack.backend.name != "local":
        pytest.skip("only the local backend runs a replica")
    backend, original = fresh_stack.backend, fresh_stack.redis.direct
    primary = direct_client(fresh_stack.redis_url(proxied=False), 5)
    try:
        primary.set("failover:before", "1")
        backend.start_replica("redis")  # returns once in sync
        backend.cut_replication("redis", True)
        primary.set("failover:after", "1")  # the replica never gets this one
    finally:
        primary.close()
    evidence = backend.fail_over("redis")
    assert evidence["gap_bytes"] > 0 and fresh_stack.redis.direct != original
    through_proxy = direct_client(fresh_stack.redis_url(proxied=True), 5)
    try:
        assert through_proxy.get("failover:before") == b"1"
        assert through_proxy.get("failover:after") is None  # lost with the old primary
        assert through_proxy.info("replication")["role"] == "master"
    finally:
        through_proxy.close()
    fresh_stack.reset()
    assert fresh_stack.redis.direct == original and _role(fresh_stack.redis_url(proxied=False)) == "master"
    with pytest.raises(redis.RedisError):  # the replica is gone: nothing listens where it was
        direct_client(f"redis://:{fresh_stack.redis_password}@{evidence['promoted']}/0", 1).ping()
