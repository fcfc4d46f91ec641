"""The Redis protocol proxy: RESP (2 and 3) between the exporter and Redis, answering chosen
commands with an error reply or cutting a reply half-way.

Why not a library: hiredis (and redis-py's parsers) turn replies into values, and a proxy must
pass the server's bytes on exactly, so it needs frame boundaries, not values; RESP's grammar is
a dozen types, read here frame by frame. Commands are decoded (arrays of bulk strings, or an
inline command) to match rules by name.

Replies keep the order of commands, pipelined or not: each command puts what answers it on a
queue (the server's next reply, a made-up error, a cut), and one writer task takes the queue in
order. A MULTI is followed: a rule matches a command inside it only if asked (``inside_multi``);
a command answered with an error there is not sent, and its EXEC then discards the transaction
on the server and answers EXECABORT, as Redis does for a command refused while queued; an EXEC
answered with an error discards it too. Push frames (RESP3 ``>``) answer no command and pass.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from harness.infra.proxies.base import Inbound, ProtocolProxy, ProtocolViolation, Rule, Trigger

# What Redis says, word for word, when it refuses a command for each reason.
ERRORS = {
    "OOM": b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
    "READONLY": b"-READONLY You can't write against a read only replica.\r\n",
    "LOADING": b"-LOADING Redis is loading the dataset in memory\r\n",
    "BUSY": b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
    "NOREPLICAS": b"-NOREPLICAS Not enough good replicas to write.\r\n",
    "MISCONF": (b"-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to "
                b"disk. Commands that may modify the data set are disabled.\r\n"),
    "TRYAGAIN": b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
}
EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
CUT = "cut"  # forward the command, pass half of its reply, then close the connection
LINE_MAX = 64 * 1024  # a header line longer than this is not RESP
SINGLE_LINE = frozenset(b"+-:_,#(")
LENGTH_PREFIXED = frozenset(b"$!=")
AGGREGATES = frozenset(b"*~>")
MAPS = frozenset(b"%|")


class RespError(ProtocolViolation):
    """Bytes that are not RESP."""


@dataclass
class CommandRule(Rule):
    command: str  # upper case, e.g. XADD
    answer: str  # a key of ERRORS, or CUT
    inside_multi: bool = False
    trigger: Trigger = field(default_factory=Trigger)

    def describe(self) -> str:
        where = " (inside MULTI too)" if self.inside_multi else ""
        return f"{self.command} answered {self.answer}{where}"


def frame_end(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """Where the RESP frame starting at ``pos`` ends (the index after it), or None while it is
    incomplete. Iterative: a reply of ten thousand stream entries is not ten thousand calls deep."""
    pending = 1  # frames still to read at this point
    while pending:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            if len(buf) - pos > LINE_MAX:
                raise RespError(f"a RESP header longer than {LINE_MAX} bytes: {bytes(buf[pos:pos + 40])!r}")
            return None
        kind, body = buf[pos], buf[pos + 1:nl]
        pos = nl + 2
        if kind in SINGLE_LINE:
            pending -= 1
        elif kind in LENGTH_PREFIXED:
            size = _number(body)
            pos += size + 2 if size >= 0 else 0
            if pos > len(buf):
                return None
            pending -= 1
        elif kind in AGGREGATES or kind in MAPS:
            pending += max(_number(body), 0) * (2 if kind in MAPS else 1) - 1
        else:
            raise RespError(f"unknown RESP type {chr(kind)!r} in {bytes(buf[pos - len(body) - 3:nl])[:40]!r}")
    return pos


def parse_command(buf: bytes | bytearray, pos: int = 0) -> tuple[int, list[bytes]] | None:
    """The command starting at ``pos``: where it ends and its words (an array of bulk strings, or
    an inline command), or None while it is incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        if len(buf) - pos > LINE_MAX:
            raise RespError(f"a command line longer than {LINE_MAX} bytes")
        return None
    if buf[pos] != ord("*"):
        return nl + 2, bytes(buf[pos:nl]).split()  # an inline command (redis-cli, telnet)
    count, at, words = _number(buf[pos + 1:nl]), nl + 2, []
    for _ in range(max(count, 0)):
        nl = buf.find(b"\r\n", at)
        if nl < 0:
            return None
        if buf[at] != ord("$"):
            raise RespError(f"a command's word is not a bulk string: {bytes(buf[at:at + 40])!r}")
        size = _number(buf[at + 1:nl])
        at = nl + 2 + size + 2
        if at > len(buf):
            return None
        words.append(bytes(buf[nl + 2:at - 2]))
    return at, words


def _number(text: bytes | bytearray) -> int:
    try:
        return int(text)
    except ValueError:
        raise RespError(f"not a RESP length: {bytes(text)[:40]!r}") from None


@dataclass
class _Session:
    """What one client connection is in: a MULTI, and whether a command in it was refused."""

    in_multi: bool = False
    aborted: bool = False


class RespProxy(ProtocolProxy):
    protocol = "redis"

    def _rule_for(self, name: str, session: _Session) -> tuple[int, CommandRule] | None:
        inside = session.in_multi and name not in ("MULTI", "EXEC", "DISCARD")
        for number, rule in self.rules().items():
            if isinstance(rule, CommandRule) and rule.command == name and (rule.inside_multi or not inside):
                if rule.trigger.fires():
                    return number, rule
        return None

    async def relay(self, connection: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                    server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter) -> None:
        answers: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        answering = self.answering(self._answer(answers, client_writer, Inbound(server_reader)), client_writer)
        commands, session = Inbound(client_reader), _Session()

        def route_all() -> list[bytes]:
            sent = []
            while (parsed := parse_command(commands.buf, commands.pos)) is not None:
                end, words = parsed
                raw = commands.take(end)
                name = words[0].decode("utf-8", "replace").upper() if words else ""
                for what, data in self._route(connection, name, words, raw, session):
                    if what == "send":
                        sent.append(data)
                    else:
                        answers.put_nowait((what, data))
            return sent

        await self.pump(commands, route_all, server_writer, answering)

    def _route(self, connection: int, name: str, words: list[bytes], raw: bytes,
               session: _Session) -> list[tuple[str, bytes]]:
        """What to send the server and what answers the client, in order, for one command."""
        hit = self._rule_for(name, session) if self._rules else None
        if name == "MULTI":
            session.in_multi, session.aborted = True, False
        if name in ("EXEC", "DISCARD") and session.in_multi:
            session.in_multi = False
            if name == "EXEC" and (session.aborted or hit is not None):
                answer = EXECABORT
                if hit is not None:
                    answer = ERRORS.get(hit[1].answer, EXECABORT)
                    self.record(connection, _request(words), hit[1].answer, hit[0])
                return [("send", b"*1\r\n$7\r\nDISCARD\r\n"), ("swallow", b""), ("inject", answer)]
        if hit is None:
            return [("send", raw), ("reply", b"")]
        number, rule = hit
        self.record(connection, _request(words), rule.answer, number)
        if rule.answer == CUT:
            return [("send", raw), ("cut", b"")]
        if session.in_multi:
            session.aborted = True  # Redis refuses a queued command this way and aborts the EXEC
        return [("inject", ERRORS[rule.answer])]

    async def _answer(self, answers: asyncio.Queue[tuple[str, bytes]], client_writer: asyncio.StreamWriter,
                      replies: Inbound) -> None:
        """Answer the client in command order: the server's replies, made-up errors, a cut."""
        while True:
            what, data = await answers.get()
            if what == "inject":
                client_writer.write(data)
            else:
                reply = await replies.frame(frame_end)
                while reply.startswith(b">"):  # a push answers no command
                    client_writer.write(reply)
                    reply = await replies.frame(frame_end)
                if what == "cut":
                    client_writer.write(reply[:max(1, len(reply) // 2)])
                    await client_writer.drain()
                    return  # the relay closes both sides
                if what == "reply":
                    client_writer.write(reply)
            if answers.empty():  # a pipeline's replies go back together
                await client_writer.drain()


def _request(words: list[bytes]) -> str:
    """A command as the journal names it: its name and first argument (the key)."""
    return " ".join(w.decode("utf-8", "replace") for w in words[:2])[:120]
