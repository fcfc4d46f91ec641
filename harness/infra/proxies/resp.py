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

from harness.infra.proxies.base import ProtocolProxy, ProtocolViolation, Rule, Trigger

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


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One whole RESP frame, its bytes exactly as read."""
    header = await reader.readuntil(b"\r\n")
    if len(header) > LINE_MAX or len(header) < 3:
        raise RespError(f"not a RESP header: {header[:40]!r}")
    kind, body = header[0], header[1:-2]
    if kind in SINGLE_LINE:
        return header
    if kind in LENGTH_PREFIXED:
        size = int(body)
        return header if size < 0 else header + await reader.readexactly(size + 2)
    if kind in AGGREGATES or kind in MAPS:
        count = int(body) * (2 if kind in MAPS else 1)
        parts = [header]
        for _ in range(max(count, 0)):
            parts.append(await read_frame(reader))
        return b"".join(parts)
    raise RespError(f"unknown RESP type {chr(kind)!r} in {header[:40]!r}")


async def read_command(reader: asyncio.StreamReader) -> tuple[bytes, list[bytes]]:
    """One command from a client: its bytes, and its words (an array of bulk strings, or inline)."""
    first = await reader.readuntil(b"\r\n")
    if not first.startswith(b"*"):
        return first, first.split()  # an inline command (redis-cli, telnet)
    count = int(first[1:-2])
    raw, words = [first], []
    for _ in range(max(count, 0)):
        header = await reader.readuntil(b"\r\n")
        if not header.startswith(b"$"):
            raise RespError(f"a command's word is not a bulk string: {header[:40]!r}")
        data = await reader.readexactly(int(header[1:-2]) + 2)
        raw += [header, data]
        words.append(data[:-2])
    return b"".join(raw), words


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
        writer = asyncio.ensure_future(self._answer(answers, client_writer, server_reader))
        # A cut, or the server gone: closing the client's side ends the read below with EOF.
        writer.add_done_callback(lambda _task: client_writer.close())
        try:
            session = _Session()
            while not writer.done():
                raw, words = await read_command(client_reader)
                name = words[0].decode("utf-8", "replace").upper() if words else ""
                for what, data in self._route(connection, name, words, raw, session):
                    if what == "send":
                        server_writer.write(data)
                    else:
                        answers.put_nowait((what, data))
                await server_writer.drain()
        finally:
            if not writer.done():
                writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _route(self, connection: int, name: str, words: list[bytes], raw: bytes,
               session: _Session) -> list[tuple[str, bytes]]:
        """What to send the server and what answers the client, in order, for one command."""
        hit = self._rule_for(name, session)
        request = " ".join(w.decode("utf-8", "replace") for w in words[:2])[:120]
        if name == "MULTI":
            session.in_multi, session.aborted = True, False
        if name in ("EXEC", "DISCARD") and session.in_multi:
            session.in_multi = False
            if name == "EXEC" and (session.aborted or hit is not None):
                answer = ERRORS.get(hit[1].answer, EXECABORT) if hit is not None else EXECABORT
                if hit is not None:
                    self.record(connection, request, hit[1].answer, hit[0])
                return [("send", b"*1\r\n$7\r\nDISCARD\r\n"), ("swallow", b""), ("inject", answer)]
        if hit is None:
            return [("send", raw), ("reply", b"")]
        number, rule = hit
        self.record(connection, request, rule.answer, number)
        if rule.answer == CUT:
            return [("send", raw), ("cut", b"")]
        if session.in_multi:
            session.aborted = True  # Redis refuses a queued command this way and aborts the EXEC
        return [("inject", ERRORS[rule.answer])]

    async def _answer(self, answers: asyncio.Queue[tuple[str, bytes]], client_writer: asyncio.StreamWriter,
                      server_reader: asyncio.StreamReader) -> None:
        """Answer the client in command order: the server's replies, made-up errors, a cut."""
        while True:
            what, data = await answers.get()
            if what == "inject":
                client_writer.write(data)
            else:
                reply = await read_frame(server_reader)
                while reply.startswith(b">"):  # a push answers no command
                    client_writer.write(reply)
                    reply = await read_frame(server_reader)
                if what == "cut":
                    client_writer.write(reply[:max(1, len(reply) // 2)])
                    await client_writer.drain()
                    return  # the relay closes both sides
                if what == "reply":
                    client_writer.write(reply)
            await client_writer.drain()
