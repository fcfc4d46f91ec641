"""The Postgres protocol proxy: the frontend/backend protocol (v3) between the exporter and
Postgres, answering chosen statements with a chosen SQLSTATE, cutting a result after some rows,
or refusing a login.

An error is not forged: the matching statement is replaced by one that makes the server itself
raise that SQLSTATE (``faultline_proxy.raise``, made by the step's prepare), so the transaction
state, the extended protocol's skip-to-Sync and the ReadyForQuery status are the server's own.
A simple Query is rewritten whole; in the extended protocol the Bind of a matching statement is
pointed at a raising statement parsed just before it (its ParseComplete is not passed on; its
parameters are the original's, cast to text). Statements are matched by their SQL: Parse gives
each prepared statement's text, so one prepared long before the rule is still matched when it is
bound. A cut passes the statement on, then closes both connections after ``after_rows`` rows of
its result. A login rule answers the StartupMessage with a FATAL ErrorResponse and closes.
No maintained Python library proxies the protocol; its framing (a type byte and a length) is
read here, and only Query, Parse, Bind and the server's ParseComplete, DataRow, CommandComplete
and ErrorResponse are looked into.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

from harness.infra.proxies.base import Inbound, ProtocolProxy, ProtocolViolation, Rule, Trigger

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
MESSAGE_MAX = 1 << 30  # Postgres's own limit on a message
RAISE_FUNCTION = "faultline_proxy.raise"
RAISE_SETUP = (
    "CREATE SCHEMA IF NOT EXISTS faultline_proxy",
    "CREATE OR REPLACE FUNCTION faultline_proxy.raise(code text, message text) RETURNS void LANGUAGE plpgsql "
    "AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message; END $$",
    "GRANT USAGE ON SCHEMA faultline_proxy TO PUBLIC",
    "GRANT EXECUTE ON FUNCTION faultline_proxy.raise(text, text) TO PUBLIC",
)
# What Postgres says for each code it can answer one statement with.
MESSAGES = {
    "40001": "could not serialize access due to concurrent update",
    "40P01": "deadlock detected",
    "57014": "canceling statement due to statement timeout",
    "55P03": "canceling statement due to lock timeout",
    "53100": "could not extend file: No space left on device",
    "53200": "out of memory",
    "58030": "could not read block 0: Input/output error",
}
LOGIN_MESSAGES = {
    "53300": "sorry, too many clients already",
    "57P03": "the database system is starting up",
    "28P01": "password authentication failed",
}
CUT = "cut"


class PgWireError(ProtocolViolation):
    """Bytes that are not the Postgres protocol."""


@dataclass
class StatementRule(Rule):
    pattern: str  # matched case-insensitively against the statement's SQL
    answer: str  # a key of MESSAGES, or CUT
    after_rows: int = 0  # for CUT: rows passed before the connection is closed
    trigger: Trigger = field(default_factory=Trigger)

    def describe(self) -> str:
        what = f"cut after {self.after_rows} row(s)" if self.answer == CUT else f"SQLSTATE {self.answer}"
        return f"statements matching {self.pattern!r} answered {what}"


@dataclass
class LoginRule(Rule):
    sqlstate: str  # a key of LOGIN_MESSAGES
    trigger: Trigger = field(default_factory=Trigger)

    def describe(self) -> str:
        return f"logins refused with SQLSTATE {self.sqlstate}"


def message_end(buf: bytearray, pos: int) -> int | None:
    """Where the typed message at ``pos`` ends, or None while it is incomplete."""
    if len(buf) - pos < 5:
        return None
    (length,) = struct.unpack_from("!i", buf, pos + 1)
    if length < 4 or length > MESSAGE_MAX:
        raise PgWireError(f"a message of length {length} (type {chr(buf[pos])!r})")
    end = pos + 1 + length
    return end if end <= len(buf) else None


def startup_end(buf: bytearray, pos: int) -> int | None:
    """Where the untyped startup-phase message at ``pos`` ends (SSLRequest, StartupMessage, ...)."""
    if len(buf) - pos < 8:
        return None
    (length,) = struct.unpack_from("!i", buf, pos)
    if length < 8 or length > 10_000:
        raise PgWireError(f"a startup message of length {length}")
    return pos + length if pos + length <= len(buf) else None


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def error_response(severity: str, code: str, text: str) -> bytes:
    fields = b"".join(k + v.encode() + b"\0" for k, v in ((b"S", severity), (b"V", severity), (b"C", code),
                                                           (b"M", text)))
    return message(b"E", fields + b"\0")


def _cstring(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode("utf-8", "replace"), end + 1


def raising_sql(code: str, params: int) -> str:
    """A statement that makes the server raise ``code``, taking the original's parameters."""
    call = f"SELECT {RAISE_FUNCTION}('{code}', '{MESSAGES[code]}')"
    if params == 0:
        return call
    return call + " FROM (SELECT " + ", ".join(f"${n}::text" for n in range(1, params + 1)) + ") AS params"


@dataclass
class _Session:
    statements: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (sql, parameter types)
    swallow: int = 0  # ParseCompletes of the proxy's own Parses, not to pass on
    cut_after: int | None = None  # rows of the current result to pass before cutting
    injected: int = 0


class PgWireProxy(ProtocolProxy):
    protocol = "postgres"

    async def relay(self, connection: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                    server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter) -> None:
        client, server, session = Inbound(client_reader), Inbound(server_reader), _Session()
        if not await self._startup(connection, client, client_writer, server, server_writer):
            return
        answering = self.answering(self._answer(session, server, client_writer), client_writer)

        def route_all() -> list[bytes]:
            sent = []
            while (end := message_end(client.buf, client.pos)) is not None:
                sent.append(self._route(connection, client.take(end), session))
            return sent

        await self.pump(client, route_all, server_writer, answering)

    async def _startup(self, connection: int, client: Inbound, client_writer: asyncio.StreamWriter,
                       server: Inbound, server_writer: asyncio.StreamWriter) -> bool:
        """Pass the untyped startup messages; answer an encryption request with the server's one
        byte; refuse the login if a rule says so. False: the connection is not relayed further."""
        while True:
            first = await client.frame(startup_end)
            (code,) = struct.unpack_from("!i", first, 4)
            server_writer.write(first)
            await server_writer.drain()
            if code in (SSL_REQUEST, GSS_REQUEST):
                answer = await server.frame(lambda buf, pos: pos + 1 if len(buf) > pos else None)
                client_writer.write(answer)
                await client_writer.drain()
                if answer != b"N":
                    await self._raw(client, client_writer, server, server_writer)  # encrypted: bytes only
                    return False
                continue
            if code == CANCEL_REQUEST:
                return False
            refusal = self._login_refusal(connection)
            if refusal is not None:
                client_writer.write(refusal)
                await client_writer.drain()
                return False
            return True

    def _login_refusal(self, connection: int) -> bytes | None:
        for number, rule in self.rules().items():
            if isinstance(rule, LoginRule) and rule.trigger.fires():
                self.record(connection, "login", rule.sqlstate, number)
                return error_response("FATAL", rule.sqlstate, LOGIN_MESSAGES[rule.sqlstate])
        return None

    async def _raw(self, client: Inbound, client_writer: asyncio.StreamWriter, server: Inbound,
                   server_writer: asyncio.StreamWriter) -> None:
        async def pump(source: Inbound, sink: asyncio.StreamWriter) -> None:
            while True:
                await source.more()
                sink.write(source.take(len(source.buf)))
                await sink.drain()
        await asyncio.gather(pump(client, server_writer), pump(server, client_writer))

    def _statement_rule(self, sql: str) -> tuple[int, StatementRule] | None:
        lowered = sql.lower()
        for number, rule in self.rules().items():
            if isinstance(rule, StatementRule) and rule.pattern.lower() in lowered and rule.trigger.fires():
                return number, rule
        return None

    def _route(self, connection: int, raw: bytes, session: _Session) -> bytes:
        """What to send the server for one client message."""
        kind, payload = raw[:1], raw[5:]
        if kind == b"P":
            name, at = _cstring(payload, 0)
            sql, at = _cstring(payload, at)
            session.statements[name] = (sql, payload[at:])
            return raw
        if kind == b"Q":
            sql = payload[:-1].decode("utf-8", "replace")
            hit = self._statement_rule(sql) if self._rules else None
            return raw if hit is None else self._rewrite_query(connection, sql, hit, session)
        if kind == b"B":
            portal, at = _cstring(payload, 0)
            statement, rest_at = _cstring(payload, at)
            sql, types = session.statements.get(statement, ("", b"\0\0"))
            hit = self._statement_rule(sql) if self._rules and sql else None
            return raw if hit is None else self._rewrite_bind(connection, raw, sql, types, portal,
                                                              payload[rest_at:], hit, session)
        return raw

    def _rewrite_query(self, connection: int, sql: str, hit: tuple[int, StatementRule], session: _Session) -> bytes:
        number, rule = hit
        self.record(connection, " ".join(sql.split())[:120], rule.answer, number)
        if rule.answer == CUT:
            session.cut_after = rule.after_rows
            return message(b"Q", sql.encode() + b"\0")
        return message(b"Q", raising_sql(rule.answer, 0).encode() + b"\0")

    def _rewrite_bind(self, connection: int, raw: bytes, sql: str, types: bytes, portal: str, rest: bytes,
                      hit: tuple[int, StatementRule], session: _Session) -> bytes:
        number, rule = hit
        self.record(connection, " ".join(sql.split())[:120], rule.answer, number)
        if rule.answer == CUT:
            session.cut_after = rule.after_rows
            return raw
        (formats,) = struct.unpack_from("!h", rest, 0)
        (params,) = struct.unpack_from("!h", rest, 2 + 2 * formats)
        session.injected += 1
        session.swallow += 1
        name = f"faultline_raise_{session.injected}".encode() + b"\0"
        parse = message(b"P", name + raising_sql(rule.answer, params).encode() + b"\0" + types)
        return parse + message(b"B", portal.encode() + b"\0" + name + rest)

    async def _answer(self, session: _Session, server: Inbound, client_writer: asyncio.StreamWriter) -> None:
        """Pass the server's messages on, leaving out the proxy's own ParseCompletes and cutting a
        result after its rows."""
        while True:
            reply = await server.frame(message_end)
            kind = reply[:1]
            if kind == b"1" and session.swallow:
                session.swallow -= 1
                continue
            if kind == b"E":
                session.swallow = 0  # an error skips to Sync: the proxy's Parse may never have run
            if session.cut_after is not None:
                if kind == b"D":
                    if session.cut_after == 0:
                        await client_writer.drain()
                        return  # the relay closes both sides mid-result
                    session.cut_after -= 1
                elif kind in (b"C", b"E", b"I"):
                    session.cut_after = None  # the result ended before the cut
            client_writer.write(reply)
            if server.empty:
                await client_writer.drain()
