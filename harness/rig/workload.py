"""Writing records into the source table, each write recorded with its outcome.

The harness writes through the direct endpoint: the writer is the ledger's source of truth
and must not be disturbed by the faults aimed at the exporter.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any, Literal

import psycopg
from psycopg import sql

from harness.infra.stack import Stack
from harness.judge.ledger import Written

SOURCE_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    token TEXT
)"""
# ``token``: one per write, so a write whose outcome was unknown can be looked up afterwards.
# Keys repeat (records of one key, for the per-key order check), so the key cannot serve.


class HeldWrite:
    """Rows inserted in a transaction that is still open: ``commit`` gives their outcomes."""

    def __init__(self, conn: psycopg.Connection, rows: list[tuple[str, bytes]], tokens: list[str],
                 ids: dict[str, int]) -> None:
        self._conn, self.rows, self.tokens, self.ids = conn, rows, tokens, ids  # ids by token

    @property
    def lowest_id(self) -> int:
        return min(self.ids.values())

    def commit(self) -> list[Written]:
        try:
            self._conn.commit()
            outcome = "ok"
        except psycopg.Error:
            # The link broke during COMMIT: it may or may not have happened. An answer: it did not.
            outcome = "indeterminate" if self._conn.broken else "failed"
        finally:
            self._conn.close()
        return [Written(self.ids[t] if outcome == "ok" else None, k, p, outcome, t)
                for (k, p), t in zip(self.rows, self.tokens, strict=True)]

    def rollback(self) -> None:
        self._conn.close()  # closing an open transaction rolls it back; a no-op once committed

    def __enter__(self) -> HeldWrite:
        return self

    def __exit__(self, *_exc: object) -> None:
        # Never leave it open: an open writer of the table holds every reader of it back.
        self.rollback()


# The harness's writes wait a bounded time: a scenario that locks the source table must not stall
# its own timeline (the lock is released by a later event of it). A write that waited too long
# is refused by the server, so it is known not to have happened.
# A write meeting a table lock is refused after 0.3 s: the timeline writes inline, and a lock fault
# would otherwise stretch every fault window near it by a second a chunk.
WRITER_OPTIONS = "-c lock_timeout=300 -c statement_timeout=30000"


WriteMode = Literal["single", "multi", "copy"]


class SourceWriter:
    """Writes through a fresh connection per insert by default (a broken one never lingers);
    ``keep_open`` reuses one until it breaks (Locust users writing hundreds of times a second)."""

    def __init__(self, stack: Stack | None, table: str, *, dsn: str | None = None, keep_open: bool = False,
                 write: WriteMode = "multi") -> None:
        if stack is None and dsn is None:
            raise ValueError("SourceWriter needs a stack or a dsn")
        self.write = write
        self._stack, self._dsn = stack, dsn
        self.table = table
        self.keep_open = keep_open
        self._open: psycopg.Connection | None = None
        self._token_prefix = uuid.uuid4().hex[:12]
        self._tokens = itertools.count()

    @property
    def dsn(self) -> str:
        """Read at each connection: after a failover the stack's direct address is the new primary's."""
        if self._dsn is not None:
            return self._dsn
        assert self._stack is not None
        return self._stack.postgres_dsn(proxied=False)

    def tokens(self, n: int) -> list[str]:
        return [f"{self._token_prefix}-{next(self._tokens)}" for _ in range(n)]

    def _connect(self, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.dsn, connect_timeout=10, autocommit=autocommit, options=WRITER_OPTIONS)

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def resolve(self, tokens: list[str]) -> dict[str, int]:
        """Which of these writes (by token) are in the source table, with their ids: the source is
        the truth for a write whose outcome was unknown (its connection broke, its writer was killed)."""
        if not tokens:
            return {}
        query = sql.SQL("SELECT token, id FROM {} WHERE token = ANY(%s)").format(sql.Identifier(self.table))
        with self._connect() as conn:
            return {token: int(record_id) for token, record_id in conn.execute(query, (tokens,)).fetchall()}

    def create(self) -> None:
        with self._connect() as conn:
            conn.execute(sql.SQL(SOURCE_DDL).format(table=sql.Identifier(self.table)))

    def _insert_query(self) -> sql.Composed:
        return sql.SQL("INSERT INTO {} (key, payload, token) SELECT * FROM unnest(%s::text[], %s::bytea[], "
                       "%s::text[]) RETURNING id, token").format(sql.Identifier(self.table))

    @staticmethod
    def _params(rows: list[tuple[str, bytes]], tokens: list[str]) -> tuple[list[str], list[bytes], list[str]]:
        return [k for k, _ in rows], [p for _, p in rows], tokens

    def begin(self, rows: list[tuple[str, bytes]]) -> HeldWrite:
        """Insert ``rows`` in a transaction left open: their ids are taken now, their commit comes
        when the caller says (writes committed meanwhile get higher ids but are visible first)."""
        tokens = self.tokens(len(rows))
        conn = self._connect(autocommit=False)
        try:
            returned = conn.execute(self._insert_query(), self._params(rows, tokens)).fetchall()
        except psycopg.Error:
            conn.close()
            raise
        return HeldWrite(conn, rows, tokens, {token: int(record_id) for record_id, token in returned})

    def insert(self, rows: list[tuple[str, bytes]], tokens: list[str] | None = None) -> list[Written]:
        """Write ``rows`` the way this writer writes (``write``): one multi-row INSERT, an INSERT per
        row (each its own transaction) or a COPY in one transaction. ``tokens``: each write's mark
        for resolving an unknown outcome later (made here unless given)."""
        tokens = tokens if tokens is not None else self.tokens(len(rows))
        marked = list(zip(rows, tokens, strict=True))
        try:
            conn = self._open if self._open is not None and not self._open.closed else self._connect()
        except psycopg.OperationalError:
            return [Written(None, k, p, "failed", t) for (k, p), t in marked]  # never reached the database
        try:
            if self.write == "single":
                return self._one_by_one(conn, marked)
            return self._at_once(conn, marked)
        finally:
            if not self.keep_open:
                conn.close()
            elif not conn.closed:
                self._open = conn

    def _one_by_one(self, conn: psycopg.Connection, marked: list[tuple[tuple[str, bytes], str]]) -> list[Written]:
        """An INSERT per row, each committed alone: once the connection breaks, that row's outcome
        is unknown and the rows after it were never sent; once the server refuses one (a lock wait
        timed out), the rows after it are not sent either: a chunk of 300 single-row writes into a
        locked table would otherwise stall the timeline 300 lock timeouts long (found by explore:
        a SHARE lock held a run for five minutes)."""
        written: list[Written] = []
        for n, ((key, payload), token) in enumerate(marked):
            done = self._at_once(conn, [((key, payload), token)])
            written += done
            if conn.closed or conn.broken or done[0].outcome == "failed":
                written += [Written(None, k, p, "failed", t) for (k, p), t in marked[n + 1:]]
                break
        return written

    def _at_once(self, conn: psycopg.Connection, marked: list[tuple[tuple[str, bytes], str]]) -> list[Written]:
        """The rows in one transaction (a multi-row INSERT, or a COPY): all share its outcome."""
        rows, tokens = [r for r, _t in marked], [t for _r, t in marked]
        try:
            if self.write == "copy":
                returned = self._copy(conn, rows, tokens)
            else:
                returned = conn.execute(self._insert_query(), self._params(rows, tokens)).fetchall()
        except psycopg.Error:
            if conn.broken or conn.closed:
                # The connection broke mid-statement: the commit may or may not have happened.
                conn.close()
                self._open = None
                return [Written(None, k, p, "indeterminate", t) for (k, p), t in marked]
            # The server answered with an error (a lock wait timed out, a constraint): not written.
            return [Written(None, k, p, "failed", t) for (k, p), t in marked]
        ids = {token: int(record_id) for record_id, token in returned}
        return [Written(ids[t], k, p, "ok", t) for (k, p), t in marked]

    def _copy(self, conn: psycopg.Connection, rows: list[tuple[str, bytes]], tokens: list[str]) -> list[Any]:
        """COPY in one transaction: every row of it commits at one WAL position (the events that
        share an LSN, debezium/dbz#1554); the ids are read back by token before the commit."""
        copy_in = sql.SQL("COPY {} (key, payload, token) FROM STDIN").format(sql.Identifier(self.table))
        ids = sql.SQL("SELECT id, token FROM {} WHERE token = ANY(%s)").format(sql.Identifier(self.table))
        with conn.transaction():
            with conn.cursor().copy(copy_in) as copy:
                for (key, payload), token in zip(rows, tokens, strict=True):
                    copy.write_row((key, payload, token))
            return conn.execute(ids, (tokens,)).fetchall()
