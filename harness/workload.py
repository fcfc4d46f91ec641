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



class SourceWriter:
    def __init__(self, stack: Stack, table: str) -> None:
        self.stack = stack
        self.table = table

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.stack.postgres_dsn(proxied=False), connect_timeout=10, autocommit=True)

    def create(self) -> None:
        with self._connect() as conn:
            conn.execute(sql.SQL(SOURCE_DDL).format(table=sql.Identifier(self.table)))

    def insert(self, rows: list[tuple[str, bytes]]) -> list[Written]:
        """Insert in one transaction; all rows share the commit's outcome."""
        query = sql.SQL("INSERT INTO {} (key, payload) SELECT * FROM unnest(%s::text[], %s::bytea[]) "
                        "RETURNING id, key").format(sql.Identifier(self.table))
        try:
            conn = self._connect()
        except psycopg.OperationalError:
            return [Written(None, k, p, "failed") for k, p in rows]  # never reached the database
        try:
            with conn:
                returned = conn.execute(query, ([k for k, _ in rows], [p for _, p in rows])).fetchall()
        except psycopg.OperationalError:
            # The connection broke mid-statement: the commit may or may not have happened.
            return [Written(None, k, p, "indeterminate") for k, p in rows]
        except psycopg.Error:
            return [Written(None, k, p, "failed") for k, p in rows]
        ids = {key: int(record_id) for record_id, key in returned}  # keys are unique per workload
        return [Written(ids[k], k, p, "ok") for k, p in rows]
