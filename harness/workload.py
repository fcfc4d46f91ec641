"""Writing records into the source table, each write recorded with its outcome.

The harness writes through the direct endpoint: the writer is the ledger's source of truth
and must not be disturbed by the faults aimed at the exporter.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from harness.stack import Stack

SOURCE_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class Written:
    """One write: ``outcome`` is ok, failed or indeterminate (commit outcome unknown)."""

    record_id: int | None
    key: str
    payload: bytes
    outcome: str



class HeldWrite:
    """Rows inserted in a transaction that is still open: ``commit`` gives their outcomes."""

    def __init__(self, conn: psycopg.Connection, rows: list[tuple[str, bytes]], ids: dict[str, int]) -> None:
        self._conn, self.rows, self.ids = conn, rows, ids

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
        return [Written(self.ids[k] if outcome == "ok" else None, k, p, outcome) for k, p in self.rows]

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
WRITER_OPTIONS = "-c lock_timeout=1000 -c statement_timeout=30000"


class SourceWriter:
    """Writes through a fresh connection per insert by default (a broken one never lingers);
    ``keep_open`` reuses one until it breaks (Locust users writing hundreds of times a second)."""

    def __init__(self, stack: Stack | None, table: str, *, dsn: str | None = None, keep_open: bool = False) -> None:
        if stack is None and dsn is None:
            raise ValueError("SourceWriter needs a stack or a dsn")
        self.dsn = dsn or stack.postgres_dsn(proxied=False)  # type: ignore[union-attr]
        self.table = table
        self.keep_open = keep_open
        self._open: psycopg.Connection | None = None

    def _connect(self, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.dsn, connect_timeout=10, autocommit=autocommit, options=WRITER_OPTIONS)

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def resolve(self, keys: list[str]) -> dict[str, int]:
        """Which of these keys are in the source table, with their ids: the source is the truth
        for a write whose outcome was unknown (its connection broke, its writer was killed)."""
        if not keys:
            return {}
        query = sql.SQL("SELECT key, id FROM {} WHERE key = ANY(%s)").format(sql.Identifier(self.table))
        with self._connect() as conn:
            return {key: int(record_id) for key, record_id in conn.execute(query, (keys,)).fetchall()}

    def create(self) -> None:
        with self._connect() as conn:
            conn.execute(sql.SQL(SOURCE_DDL).format(table=sql.Identifier(self.table)))

    def _insert_query(self) -> sql.Composed:
        return sql.SQL("INSERT INTO {} (key, payload) SELECT * FROM unnest(%s::text[], %s::bytea[]) "
                       "RETURNING id, key").format(sql.Identifier(self.table))

    def begin(self, rows: list[tuple[str, bytes]]) -> HeldWrite:
        """Insert ``rows`` in a transaction left open: their ids are taken now, their commit comes
        when the caller says (writes committed meanwhile get higher ids but are visible first)."""
        conn = self._connect(autocommit=False)
        try:
            returned = conn.execute(self._insert_query(), ([k for k, _ in rows], [p for _, p in rows])).fetchall()
        except psycopg.Error:
            conn.close()
            raise
        return HeldWrite(conn, rows, {key: int(record_id) for record_id, key in returned})

    def insert(self, rows: list[tuple[str, bytes]]) -> list[Written]:
        """Insert in one transaction; all rows share the commit's outcome."""
        query = self._insert_query()
        try:
            conn = self._open if self._open is not None and not self._open.closed else self._connect()
        except psycopg.OperationalError:
            return [Written(None, k, p, "failed") for k, p in rows]  # never reached the database
        try:
            returned = conn.execute(query, ([k for k, _ in rows], [p for _, p in rows])).fetchall()
        except psycopg.Error:
            if conn.broken or conn.closed:
                # The connection broke mid-statement: the commit may or may not have happened.
                conn.close()
                self._open = None
                return [Written(None, k, p, "indeterminate") for k, p in rows]
            # The server answered with an error (a lock wait timed out, a constraint): not written.
            return [Written(None, k, p, "failed") for k, p in rows]
        finally:
            if not self.keep_open:
                conn.close()
        if self.keep_open and not conn.closed:
            self._open = conn
        ids = {key: int(record_id) for record_id, key in returned}  # keys are unique per workload
        return [Written(ids[k], k, p, "ok") for k, p in rows]
