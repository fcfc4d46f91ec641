"""The Postgres protocol proxy's parts without a server: messages are framed by their length, a
matching Query is rewritten to a statement that raises the code, a matching Bind is pointed at a
raising statement parsed just before it (whose ParseComplete the client never sees), and garbage
lengths are refused."""

from __future__ import annotations

import struct

import pytest

from harness.infra.proxies.base import Trigger
from harness.infra.proxies.pgwire import (
    PgWireError,
    PgWireProxy,
    StatementRule,
    _Session,
    message,
    message_end,
    raising_sql,
    startup_end,
)


def test_messages_end_where_their_length_says_and_not_before() -> None:
    one = message(b"Q", b"SELECT 1\0")
    data = bytearray(one + message(b"S", b""))
    assert message_end(data, 0) == len(one) and message_end(data, len(one)) == len(data)
    assert all(message_end(bytearray(one[:cut]), 0) is None for cut in range(len(one)))
    startup = struct.pack("!ii", 8, 80877103)
    assert startup_end(bytearray(startup), 0) == 8 and startup_end(bytearray(startup[:7]), 0) is None


def test_impossible_lengths_are_refused() -> None:
    with pytest.raises(PgWireError):
        message_end(bytearray(b"Q" + struct.pack("!i", 2)), 0)
    with pytest.raises(PgWireError):
        startup_end(bytearray(struct.pack("!ii", 4, 0)), 0)


def test_the_raising_statement_takes_the_originals_parameters() -> None:
    assert raising_sql("40001", 0).startswith("SELECT faultline_proxy.raise('40001', 'could not serialize")
    assert raising_sql("40P01", 2).endswith("FROM (SELECT $1::text, $2::text) AS params")


def _proxy(answer: str = "40001") -> PgWireProxy:
    proxy = PgWireProxy(("127.0.0.1", 1))
    proxy.add_rule(StatementRule("from t", answer, trigger=Trigger(times=1)))
    return proxy


def test_a_matching_query_is_rewritten_and_the_next_passes() -> None:
    proxy, session = _proxy(), _Session()
    query = message(b"Q", b"SELECT * FROM t\0")
    rewritten = proxy._route(1, query, session)
    assert b"faultline_proxy.raise('40001'" in rewritten and proxy._route(1, query, session) == query


def test_a_bind_of_a_statement_prepared_earlier_is_pointed_at_a_raising_one() -> None:
    proxy, session = _proxy("40P01"), _Session()
    types = struct.pack("!hi", 1, 20)  # one parameter, int8
    parse = message(b"P", b"stmt1\0SELECT id FROM t WHERE id > $1\0" + types)
    assert proxy._route(1, parse, session) == parse  # a Parse passes: its text is remembered
    rest = struct.pack("!hh", 1, 1) + struct.pack("!hi", 1, 8) + struct.pack("!q", 3) + struct.pack("!h", 0)
    bind = message(b"B", b"\0stmt1\0" + rest)
    sent = proxy._route(1, bind, session)
    first = message_end(bytearray(sent), 0)
    assert first is not None and sent[:1] == b"P" and b"faultline_raise_1\0" in sent[:first]
    assert b"$1::text" in sent[:first] and sent[:first].endswith(types)  # the original's parameter types
    assert sent[first:] == message(b"B", b"\0faultline_raise_1\0" + rest) and session.swallow == 1
    assert [(i.request, i.answer) for i in proxy.injections()] == [("SELECT id FROM t WHERE id > $1", "40P01")]
