"""The Postgres source: keyset pagination over a monotonic key, in chunks, in constant memory.

Source table contract: ``id BIGINT`` (monotonic, unique), ``key TEXT``, ``payload BYTEA``
(UTF-8 text by contract; rows that are not valid UTF-8 are malformed and dead-lettered).

libpq has no client-side timeout for a query whose answer never comes (a stalled link), so
every query runs under a watchdog that shuts the socket down at the deadline: the call then
fails at once with a TimeoutError instead of hanging the thread forever.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple, TypeVar

import psycopg
from psycopg import sql

from exporter.config import Config
from exporter.errors import TransientError

T = TypeVar("T")


class Row(NamedTuple):
    id: int
    key: str
    payload: bytes


class QueryTimeout(TimeoutError):
    """The server did not answer within the deadline (an etcd-style 'request timed out')."""


# Both are "the request timed out": no answer to a query, or none to the connection attempt.
TIMEOUTS = (QueryTimeout, psycopg.errors.ConnectionTimeout)


@contextmanager
def _watchdog(conn: psycopg.Connection, seconds: float) -> Iterator[threading.Event]:
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        try:
            with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return  # the connection closed by itself meanwhile: nothing left to unblock

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


class Source:
    def __init__(self, config: Config, stage: str = "source") -> None:
        self.config = config
        self.stage = stage
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            timeout = max(1, int(self.config.postgres_timeout_s))
            self._conn = psycopg.connect(self.config.postgres_dsn, connect_timeout=timeout, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run(self, fn: Callable[[psycopg.Connection], T], timeout: float | None = None) -> T:
        """Run ``fn`` on the connection under a deadline; connection trouble is a TransientError."""
        timeout = timeout or self.config.postgres_timeout_s
        try:
            conn = self._connection()
            with _watchdog(conn, timeout) as fired:
                try:
                    return fn(conn)
                except psycopg.OperationalError as exc:
                    if fired.is_set():
                        raise QueryTimeout(f"no answer from postgres within {timeout:.1f}s") from exc
                    raise
        except (psycopg.OperationalError, psycopg.errors.UndefinedTable, QueryTimeout, OSError) as exc:
            self.close()
            raise TransientError(self.stage, exc) from exc

    def fetch_after(self, last_id: int, limit: int) -> list[Row]:
        query = sql.SQL("SELECT id, key, payload FROM {} WHERE id > %s ORDER BY id LIMIT %s").format(
            sql.Identifier(self.config.source_table))

        def fetch(conn: psycopg.Connection) -> list[Row]:
            # Binary results: bytea arrives as bytes, not as hex text to decode row by row.
            with conn.cursor(binary=True) as cur:
                cur.execute(query, (last_id, limit))
                return [Row(i, k or "", p or b"") for i, k, p in cur]

        return self.run(fetch)

    def max_id(self) -> int:
        query = sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(self.config.source_table))
        return int(self.run(lambda conn: conn.execute(query).fetchone()[0]))  # type: ignore[index]
