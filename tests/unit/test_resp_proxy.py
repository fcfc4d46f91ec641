"""The Redis protocol proxy's parts without a server: RESP frames are passed as read (their bytes,
whole), commands are decoded (arrays and inline), a trigger fires on the n-th match for n times
with a replayable chance, and a command refused inside a MULTI aborts its EXEC as Redis does."""

from __future__ import annotations

import pytest

from harness.infra.proxies.base import Trigger
from harness.infra.proxies.resp import EXECABORT, CommandRule, RespError, RespProxy, frame_end, parse_command

FRAMES = [b"+OK\r\n", b"-ERR no\r\n", b":42\r\n", b"$-1\r\n", b"$5\r\nhe\r\no\r\n", b"*-1\r\n",
          b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", b"%1\r\n+k\r\n$1\r\nv\r\n", b"_\r\n", b",1.5\r\n", b">2\r\n+p\r\n:1\r\n",
          b"=8\r\ntxt:abcd\r\n", b"~1\r\n#t\r\n"]


@pytest.mark.parametrize("frame", FRAMES)
def test_each_frame_ends_where_it_ends_and_not_before_it_is_whole(frame: bytes) -> None:
    data = frame + b"+NEXT\r\n"
    assert frame_end(data) == len(frame) and frame_end(data, len(frame)) == len(data)
    assert all(frame_end(frame[:cut]) is None for cut in range(len(frame)))


def test_bytes_that_are_not_resp_are_refused() -> None:
    with pytest.raises(RespError, match="unknown RESP type"):
        frame_end(b"?what\r\n")
    with pytest.raises(RespError, match="not a RESP length"):
        frame_end(b"$x\r\n")


def test_commands_are_decoded_from_arrays_and_inline() -> None:
    array = b"*3\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n"
    data = array + b"PING\r\n"
    assert parse_command(data) == (len(array), [b"XADD", b"s", b"*"])
    assert parse_command(data, len(array)) == (len(data), [b"PING"])
    assert all(parse_command(array[:cut]) is None for cut in range(1, len(array)))


def test_a_trigger_fires_from_the_nth_match_for_its_times() -> None:
    trigger = Trigger(nth=2, times=2)
    assert [trigger.fires() for _ in range(5)] == [False, True, True, False, False]
    every = Trigger(times=0)
    assert all(every.fires() for _ in range(50)) and every.fired == 50


def _draws(seed: int, n: int = 1000) -> list[bool]:
    trigger = Trigger(times=0, probability=0.5, seed=seed)
    return [trigger.fires() for _ in range(n)]


def test_a_trigger_with_a_chance_is_replayable_and_near_its_chance() -> None:
    fired = _draws(7)
    assert 400 < sum(fired) < 600 and fired == _draws(7) and fired != _draws(8)


def _proxy_with(rule: CommandRule) -> RespProxy:
    proxy = RespProxy(("127.0.0.1", 1))
    proxy.add_rule(rule)
    return proxy


def _route(proxy: RespProxy, *commands: str) -> list[list[tuple[str, bytes]]]:
    from harness.infra.proxies.resp import _Session
    session = _Session()
    return [proxy._route(1, name, [name.encode()], name.encode(), session) for name in commands]


def test_a_command_refused_inside_multi_is_not_sent_and_its_exec_aborts() -> None:
    proxy = _proxy_with(CommandRule("XADD", "OOM", inside_multi=True))
    multi, xadd, exec_ = _route(proxy, "MULTI", "XADD", "EXEC")
    assert multi == [("send", b"MULTI"), ("reply", b"")]
    assert xadd == [("inject", b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")]
    assert exec_ == [("send", b"*1\r\n$7\r\nDISCARD\r\n"), ("swallow", b""), ("inject", EXECABORT)]
    assert [i.answer for i in proxy.injections()] == ["OOM"]


def test_a_rule_leaves_multi_alone_unless_asked() -> None:
    proxy = _proxy_with(CommandRule("XADD", "OOM"))
    _multi, xadd, exec_ = _route(proxy, "MULTI", "XADD", "EXEC")
    assert xadd == [("send", b"XADD"), ("reply", b"")] and exec_ == [("send", b"EXEC"), ("reply", b"")]
    outside = _route(proxy, "XADD")[0]
    assert outside[0][0] == "inject" and proxy.injected == 1


def test_an_exec_refused_discards_the_transaction_on_the_server() -> None:
    proxy = _proxy_with(CommandRule("EXEC", "READONLY"))
    _multi, _set, exec_ = _route(proxy, "MULTI", "SET", "EXEC")
    assert exec_ == [("send", b"*1\r\n$7\r\nDISCARD\r\n"), ("swallow", b""),
                     ("inject", b"-READONLY You can't write against a read only replica.\r\n")]
