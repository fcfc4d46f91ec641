"""The Postgres source: keyset pagination over a monotonic key, in chunks, in constant memory.

Ids are taken from a sequence when a row is inserted, but rows become visible when their
transaction commits, and commits do not come in id order: a transaction that took ids 10-14
can commit after one that took 15-20 was already read. Paging with ``id > checkpoint`` would
then step over 10-14 for good (silent loss under concurrent writers). So every page is read
together with, from the same snapshot, the transactions that may still add rows to the source
table: those that were in progress when the rows were read and either hold a write lock on the
table now, or have finished since (they may have written; the next page shows it). While there
are any, a row is *settled* only if every id between the checkpoint and it is visible: a
missing id may be theirs. Writers on other tables never hold the reader up. The reader moves its
checkpoint through settled rows only (see ``settled_prefix``).

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
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import psycopg
from psycopg import sql

from exporter.config import Config
from exporter.errors import TransientError

T = TypeVar("T")


class Row(NamedTuple):
    id: int  # the row's id; in change mode the change's own number in the change log
    key: str
    payload: bytes | None  # None: a delete in change mode (no after image)
    xmin: int = 0  # the inserting transaction's 32-bit id (0: not read)
    op: str = ""  # change mode: c (insert), u (update), d (delete)
    row_id: int = 0  # change mode: the id of the row changed
    tx: int = 0  # change mode: the changing transaction's id


class Page(NamedTuple):
    """Rows after a checkpoint, and whether anyone may still add rows below them."""

    rows: list[Row]
    blocking: tuple[int, ...] = ()  # 32-bit ids of transactions that may still commit rows here
    unknown_writer: bool = False  # a writer holds the table's lock with no transaction id yet
    completed_since: bool = False  # a transaction finished between the page's snapshot and a fresh one
    xip: frozenset[int] = frozenset()  # the snapshot's in-progress list (32-bit ids)
    xmax: int = 0  # the snapshot's xmax (32-bit): ids at or above it were in progress or not begun


def blocking_writers(in_progress: list[int] | None, writers: list[int] | None, running: list[int] | None) -> Page:
    """The transactions that may hold rows back: every writer of the table (``writers``: the
    transaction ids of its write-lock holders, -1 for a holder with none yet), and those in
    progress at the page's snapshot (``in_progress``) that have finished since (``running``: the
    transactions still running). A writer need not be in the snapshot's in-progress list: one
    whose id is at or above the snapshot's xmax is in progress too but never listed there."""
    still_running = set(running or ())
    writer_ids = set(writers or ())
    finished = {x for x in (in_progress or ()) if x not in still_running}
    return Page([], tuple(sorted((writer_ids - {-1}) | finished)), -1 in writer_ids)


# Transaction ids below 3 are special (bootstrap, frozen): older than anything running.
_FIRST_NORMAL_XID = 3


def xid_precedes(a: int, b: int) -> bool:
    """``a`` is older than ``b`` in Postgres's circular 32-bit transaction-id space."""
    if a < _FIRST_NORMAL_XID or b < _FIRST_NORMAL_XID:
        return a < b
    return ((a - b) & 0xFFFFFFFF) >= 0x80000000


def settled_prefix(page: Page, after: int) -> list[Row]:
    """The rows (in id order, all after checkpoint ``after``) the checkpoint may move through.

    With no writer of the table (nor one holding its lock without a transaction id yet) and no
    transaction finished since the page's snapshot, nothing can still commit below these rows:
    all settle, gaps included (ids taken by rolled-back inserts). Otherwise only the rows up to the first gap: an
    id missing below a visible row may belong to a transaction still open, and ids come from the
    sequence in the order they are taken, not in the order transactions began, so no rule on
    transaction age can tell (an older transaction that takes an id after a younger one did
    commits rows above the younger one's). Contiguous ids, on the other hand, hide nothing below
    them whoever is still writing. Source contract: ids from a sequence with CACHE 1, the default.
    """
    if not page.blocking and not page.unknown_writer and not page.completed_since:
        return page.rows
    expected = after + 1
    for n, row in enumerate(page.rows):
        if row.id != expected:
            return page.rows[:n]
        expected += 1
    return page.rows


def finished_before(page: Page, xids: frozenset[int]) -> bool:
    """Every one of ``xids`` had finished when the page's snapshot was taken: whatever they
    committed is in the page."""
    return all(xid_precedes(x, page.xmax) and x not in page.xip for x in xids)


@dataclass
class GapWatch:
    """Tells a rolled-back id from one an open transaction still holds. Any transaction that takes
    an id holds the table's write lock first, so the writers seen with a gap are all that could
    hold it: once every one of them had finished before a later page's snapshot and the id is
    still missing, it was rolled back (or taken and never used), and the reader moves past it.
    Without this, one failed insert under a steady stream of writers held the reader back for
    the whole settle timeout."""

    gap: int | None = None
    holders: frozenset[int] = frozenset()
    unsure: bool = False  # a writer had no transaction id yet when the gap was seen

    def settle(self, page: Page, after: int) -> list[Row]:
        rows = settled_prefix(page, after)
        while len(rows) < len(page.rows):
            gap = (rows[-1].id if rows else after) + 1
            if self.gap != gap:  # a new gap: whoever writes now may hold it
                self.gap, self.holders, self.unsure = gap, frozenset(page.blocking), page.unknown_writer
                return rows
            if self.unsure:  # the writer that had no id then has one now (or has finished)
                self.holders, self.unsure = self.holders | frozenset(page.blocking), page.unknown_writer
                return rows
            if not finished_before(page, self.holders):
                return rows  # writers that came later cannot hold it: they are not added
            beyond = page.rows[len(rows):]
            rows = rows + settled_prefix(page._replace(rows=beyond), beyond[0].id - 1)
            self.gap = None
        self.gap = None
        return rows


# Write-capable lock modes: what INSERT, COPY and anything stronger take on the table.
_PAGE = """
SELECT id, key, payload, xmin::text::bigint, pg_current_snapshot()::text,
  (SELECT array_agg(x::text::bigint %% 4294967296) FROM pg_snapshot_xip(pg_current_snapshot()) AS x),
  (SELECT array_agg(coalesce(t.transactionid::text::bigint, -1))
     FROM pg_locks r LEFT JOIN pg_locks t
       ON t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
      AND t.virtualtransaction = r.virtualtransaction
    WHERE r.locktype = 'relation' AND r.relation = {regclass}::regclass AND r.granted
      AND r.pid IS DISTINCT FROM pg_backend_pid()
      AND r.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')),
  (SELECT array_agg(transactionid::text::bigint) FROM pg_locks
    WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted){change_columns}
FROM {table} WHERE id > %s ORDER BY id LIMIT %s
"""
# Change mode: what the change log's trigger recorded besides the row's key and after image.
_CHANGE_COLUMNS = ", op, row_id, tx"


def _row(found: tuple, changes: bool) -> Row:
    """A page's row: id, key, payload, xmin, then four columns of the page's own, then (change
    mode) op, row_id, tx. A change without an after image (a delete) keeps payload None."""
    record_id, key, payload, xmin = found[:4]
    if not changes:
        return Row(record_id, key or "", payload or b"", xmin)
    op, row_id, tx = found[8:11]
    return Row(record_id, key or "", payload, xmin, op, row_id, tx)


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


# Our deadlines are client-side (the watchdog shuts the socket): the server would go on waiting
# (on a lock, say) for a client that left, one session more per retry until connections ran out.
# With this it checks every second that the client is still there and ends the session if not.
# A connection option that sets no timeout of its own, so a role's statement_timeout still holds.
SESSION_OPTIONS = "-c client_connection_check_interval=1000"


def connect(config: Config, **kwargs: object) -> psycopg.Connection:
    return psycopg.connect(config.postgres_dsn, connect_timeout=max(1, int(config.postgres_timeout_s)),
                           options=SESSION_OPTIONS, **kwargs)  # type: ignore[arg-type]


def within_deadline(conn: psycopg.Connection, fn: Callable[[psycopg.Connection], T], timeout: float,
                    stage: str) -> T:
    """``fn`` on ``conn``, its socket shut if the server has not answered within ``timeout``;
    connection trouble and a missed deadline are a TransientError of ``stage``. A connection
    whose deadline fired is broken: its owner discards it (a pool does so on its own)."""
    try:
        with _watchdog(conn, timeout) as fired:
            try:
                return fn(conn)
            except psycopg.OperationalError as exc:
                if fired.is_set():
                    raise QueryTimeout(f"no answer from postgres within {timeout:.1f}s") from exc
                raise
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable, QueryTimeout, OSError) as exc:
        raise TransientError(stage, exc) from exc


class Source:
    def __init__(self, config: Config, stage: str = "source") -> None:
        self.config = config
        self.stage = stage
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.config, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run(self, fn: Callable[[psycopg.Connection], T], timeout: float | None = None) -> T:
        """Run ``fn`` on the connection under a deadline; connection trouble is a TransientError."""
        try:
            conn = self._connection()  # a refused or timed-out connect is as transient as a query's
        except (psycopg.OperationalError, OSError) as exc:
            self.close()
            raise TransientError(self.stage, exc) from exc
        try:
            return within_deadline(conn, fn, timeout or self.config.postgres_timeout_s, self.stage)
        except TransientError:
            self.close()
            raise

    def fetch_after(self, last_id: int, limit: int) -> Page:
        """Rows after ``last_id`` in id order, and who may still add rows below them (see the module
        docstring). The uncorrelated subqueries run once each, after the statement's snapshot was
        taken: ``pg_current_snapshot`` is that snapshot, and pg_locks is read just after it."""
        table = sql.Identifier(self.config.read_table)
        query = sql.SQL(_PAGE).format(table=table, regclass=sql.Literal(self.config.read_table),
                                      change_columns=sql.SQL(_CHANGE_COLUMNS if self.config.changes else ""))

        def fetch(conn: psycopg.Connection) -> Page:
            # Binary results: bytea arrives as bytes, not as hex text to decode row by row.
            with conn.cursor(binary=True) as cur:
                cur.execute(query, (last_id, limit))
                found = cur.fetchall()
            if not found:
                return Page([])
            # A fresh snapshot, taken after the locks were read: if it differs, a transaction
            # finished in between, and one that was in progress at the page's snapshot without
            # being listed in it (an id at or above its xmax) may have committed rows the page
            # could not see.
            fresh = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
            snapshot, in_progress, writers, running = found[0][4:8]
            page = blocking_writers(in_progress, writers, running)
            return page._replace(rows=[_row(found_row, self.config.changes) for found_row in found],
                                 completed_since=fresh is None or fresh[0] != snapshot,
                                 xip=frozenset(in_progress or ()), xmax=int(snapshot.split(":")[1]) % 2**32)

        return self.run(fetch)

    def server(self) -> str:
        """The server answering (its own address, not a proxy's): another one after a failover."""
        return str(self.run(lambda conn: conn.execute(  # type: ignore[index]
            "SELECT concat(inet_server_addr(), ':', inet_server_port())").fetchone()[0]))

    def max_id(self) -> int:
        query = sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(self.config.read_table))
        return int(self.run(lambda conn: conn.execute(query).fetchone()[0]))  # type: ignore[index]
