"""The Postgres source: keyset pagination over a monotonic key, in chunks, in constant memory.

Ids are taken from a sequence when a row is inserted, but rows become visible when their
transaction commits, and commits do not come in id order: a transaction that took ids 10-14
can commit after one that took 15-20 was already read. Paging with ``id > checkpoint`` would
then step over 10-14 for good (silent loss under concurrent writers). So every page carries
the snapshot's horizon (``pg_snapshot_xmin``: the oldest transaction still in progress) and
each row's inserting transaction (``xmin``): a row is *settled* only when its transaction is
older than every transaction still running, because only then can no lower id still appear.
The reader moves its checkpoint through settled rows only (see ``settled_prefix``).

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
    xmin: int = 0  # the inserting transaction's 32-bit id (0: not read)


class Page(NamedTuple):
    """Rows after a checkpoint, with the horizon of the snapshot that read them."""

    rows: list[Row]
    horizon: int  # 32-bit id of the oldest transaction in progress when the rows were read


# Transaction ids below 3 are special (bootstrap, frozen): older than anything running.
_FIRST_NORMAL_XID = 3


def xid_precedes(a: int, b: int) -> bool:
    """``a`` is older than ``b`` in Postgres's circular 32-bit transaction-id space."""
    if a < _FIRST_NORMAL_XID or b < _FIRST_NORMAL_XID:
        return a < b
    return ((a - b) & 0xFFFFFFFF) >= 0x80000000


def settled_prefix(page: Page) -> list[Row]:
    """The rows (in id order) up to the first whose transaction may still have company: a row
    committed while an older transaction was still running may have lower ids in flight."""
    for n, row in enumerate(page.rows):
        if not xid_precedes(row.xmin, page.horizon):
            return page.rows[:n]
    return page.rows


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

    def fetch_after(self, last_id: int, limit: int) -> Page:
        """Rows after ``last_id`` in id order, and the horizon of the same snapshot (the uncorrelated
        subquery runs once, on the statement's snapshot: ``pg_current_snapshot`` is that snapshot)."""
        query = sql.SQL(
            "SELECT id, key, payload, xmin::text::bigint, "
            "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint %% 4294967296) "
            "FROM {} WHERE id > %s ORDER BY id LIMIT %s").format(sql.Identifier(self.config.source_table))

        def fetch(conn: psycopg.Connection) -> Page:
            # Binary results: bytea arrives as bytes, not as hex text to decode row by row.
            with conn.cursor(binary=True) as cur:
                cur.execute(query, (last_id, limit))
                found = cur.fetchall()
            if not found:
                return Page([], 0)
            return Page([Row(i, k or "", p or b"", x) for i, k, p, x, _h in found], int(found[0][4]))

        return self.run(fetch)

    def max_id(self) -> int:
        query = sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(self.config.source_table))
        return int(self.run(lambda conn: conn.execute(query).fetchone()[0]))  # type: ignore[index]
