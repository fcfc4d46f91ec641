"""The Redis protocol proxy against a real Redis: one command refused while the rest of the
connection (and a pipeline around it) goes through, a MULTI whose queued command is refused is
really discarded on the server, a cut reply closes the connection, and the proxy put on the Redis
link for a run is taken off it again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.infra.proxies.base import Trigger
from harness.infra.proxies.resp import CommandRule, RespProxy
from harness.infra.stack import Stack


@pytest.fixture
def proxy(fresh_stack: Stack) -> Iterator[RespProxy]:
    direct = fresh_stack.redis.endpoint(proxied=False)
    started = RespProxy((direct.host, direct.port)).start()
    yield started
    started.close()


def _client(stack: Stack, proxy: RespProxy) -> redis.Redis:
    # No silent retries: redis-py would otherwise send a command again after a cut reply.
    return redis.Redis(host="127.0.0.1", port=proxy.port, password=stack.redis_password, socket_timeout=5,
                       retry=Retry(NoBackoff(), 0))


@pytest.mark.timeout(60)
def test_one_command_is_refused_and_the_rest_of_a_pipeline_goes_through(fresh_stack: Stack, proxy: RespProxy) -> None:
    client = _client(fresh_stack, proxy)
    proxy.add_rule(CommandRule("XADD", "OOM", trigger=Trigger(nth=2, times=1)))
    pipe = client.pipeline(transaction=False)
    for n in range(3):
        pipe.xadd("proxied", {"n": n})
    pipe.xlen("proxied")
    replies = pipe.execute(raise_on_error=False)
    assert isinstance(replies[1], redis.exceptions.OutOfMemoryError) and replies[3] == 2, replies
    assert [(i.request, i.answer) for i in proxy.injections()] == [("XADD proxied", "OOM")]


@pytest.mark.timeout(60)
def test_a_refused_queued_command_discards_the_transaction_on_the_server(fresh_stack: Stack,
                                                                         proxy: RespProxy) -> None:
    client = _client(fresh_stack, proxy)
    proxy.add_rule(CommandRule("XADD", "NOREPLICAS", inside_multi=True))
    pipe = client.pipeline(transaction=True)
    pipe.set("in-multi", "1")
    pipe.xadd("proxied", {"n": 1})
    with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
        pipe.execute()
    assert client.get("in-multi") is None  # the SET queued beside it did not run
    pipe = client.pipeline(transaction=True)
    pipe.set("in-multi", "2")
    pipe.xadd("proxied", {"n": 2})
    assert pipe.execute()[0] is True and client.get("in-multi") == b"2"  # the rule fired once


@pytest.mark.timeout(60)
def test_a_cut_reply_closes_the_connection_after_the_command_ran(fresh_stack: Stack, proxy: RespProxy) -> None:
    client = _client(fresh_stack, proxy)
    proxy.add_rule(CommandRule("INCRBY", "cut"))  # redis-py sends INCR as INCRBY
    with pytest.raises(redis.ConnectionError):
        client.incr("counted")
    assert client.get("counted") == b"1"  # it ran: only the answer was lost
