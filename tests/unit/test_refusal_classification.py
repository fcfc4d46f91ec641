"""Which Redis answers the bundled exporter treats as a refusal that passes (retried with backoff)
and which it does not: the classification behind 'no worker crash loop'."""

from __future__ import annotations

import pytest
import redis

from exporter.buffer import RedisRefused, refusal


@pytest.mark.parametrize(("error", "code"), [
    (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "OOM"),
    (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "READONLY"),
    (redis.exceptions.NoPermissionError("this user has no permissions to run the 'xadd' command"), "NOPERM"),
    (redis.exceptions.ExecAbortError("Transaction discarded because of previous errors."), "EXECABORT"),
    (redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable"), "MISCONF"),
    (redis.ResponseError("NOREPLICAS Not enough good replicas to write."), "NOREPLICAS"),
    (redis.exceptions.MasterDownError("Link with MASTER is down"), "MASTERDOWN"),
])
def test_refusals_that_pass_are_recognised_with_their_code(error: redis.ResponseError, code: str) -> None:
    found = refusal(error)
    assert isinstance(found, RedisRefused) and found.code == code
    assert str(found).startswith(code)


@pytest.mark.parametrize("error", [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.ResponseError("ERR syntax error"),
    redis.ResponseError("BUSYGROUP Consumer Group name already exists"),  # not BUSY (a script running)
])
def test_other_error_replies_are_not_refusals(error: redis.ResponseError) -> None:
    assert refusal(error) is None
