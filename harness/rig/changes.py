"""The change writer: a seeded mix of inserts, updates, deletes, key changes and transactions on
rows of its own, each committed change kept in the change log with its outcome.

Like the record writer it writes through the direct endpoint (the truth must not be disturbed
by the faults aimed at the exporter), one transaction at a time from one thread, so the order of
change numbers is the commit order. A transaction whose commit outcome is unknown (the server
died during COMMIT) is marked in a small table of its own, read back before judging; the rows
it touched are never changed again, so their history stays complete whichever way it went.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from harness.errors import HarnessError
from harness.judge.changelog import DELETE, INSERT, KEY_UPDATE, MOVE_IN, MOVE_OUT, UPDATE, ChangeLog, version_payload
from harness.model.changes import OPERATIONS, ChangeMix
from harness.rig.workload import WRITER_OPTIONS

MARKS_DDL = "CREATE TABLE IF NOT EXISTS {marks} (token TEXT PRIMARY KEY)"


@dataclass
class _Planned:
    """One change of a transaction, before it is sent."""

    operation: str
    row: int | None  # None: a new row (an insert)
    key: str = ""


class ChangeWriter:
    def __init__(self, dsn: str | Callable[[], str], table: str, mix: ChangeMix, *, seed: int, size: int,
                 key_prefix: str) -> None:
        # A callable is asked at each connection: after a failover the primary is elsewhere.
        self._dsn, self.table, self.mix = dsn, table, mix
        self.marks = f"{table}_txn"
        self.log = ChangeLog()
        self.rng = random.Random(seed)
        self.filler = max(1, size - 16)
        self.key_prefix = key_prefix
        self.live: dict[int, str] = {}  # row id -> its key now (rows the writer may still change)
        self._rows: list[int] = []  # the live rows, for drawing one in constant time
        self._where: dict[int, int] = {}  # row -> its index in _rows
        self.written = 0  # changes attempted
        self.outcomes = {"ok": 0, "failed": 0, "indeterminate": 0}
        self.resolve_error: str | None = None
        self._token = uuid.uuid4().hex[:12]
        self._hot: tuple[int, int] | None = None  # (row, updates left in its burst)

    @property
    def dsn(self) -> str:
        return self._dsn if isinstance(self._dsn, str) else self._dsn()

    def create(self) -> None:
        with psycopg.connect(self.dsn, connect_timeout=10, autocommit=True) as conn:
            conn.execute(sql.SQL(MARKS_DDL).format(marks=sql.Identifier(self.marks)))

    # -- drawing ------------------------------------------------------------------------------------
    def _operation(self) -> str:
        if not self.live:
            return "insert"  # nothing to change yet
        weights = [getattr(self.mix, op) for op in OPERATIONS]
        return self.rng.choices(OPERATIONS, weights)[0]

    def _row_for(self, operation: str, taken: set[int]) -> int | None:
        """Which live row an operation acts on: the hot row during its burst (updates), else any
        row not yet changed by this transaction; None when none is left (it becomes an insert)."""
        if operation == "update" and self._hot is not None and self._hot[0] in self.live and self._hot[0] not in taken:
            row, left = self._hot
            self._hot = (row, left - 1) if left > 1 else None
            return row
        free = [r for r in self._sample() if r not in taken]
        if not free:
            return None
        row = free[0]
        if operation == "update" and self._hot is None and self.rng.random() < self.mix.hot:
            self._hot = (row, self.mix.burst)
        return row

    def _sample(self) -> list[int]:
        """Up to eight live rows at random, in constant time however many there are (a week's soak
        keeps hundreds of thousands alive)."""
        rows = self._rows
        return [rows[i] for i in self.rng.sample(range(len(rows)), min(8, len(rows)))]

    def _keep(self, row: int, key: str) -> None:
        if row not in self.live:
            self._where[row] = len(self._rows)
            self._rows.append(row)
        self.live[row] = key

    def _drop(self, row: int) -> None:
        """Out of the live rows: the last one takes its place in the list."""
        if self.live.pop(row, None) is None:
            return
        index, last = self._where.pop(row), self._rows.pop()
        if last != row:
            self._rows[index], self._where[last] = last, index

    def _plan(self, size: int) -> list[_Planned]:
        planned: list[_Planned] = []
        taken: set[int] = set()
        for _ in range(size):
            operation = self._operation()
            row = None if operation == "insert" else self._row_for(operation, taken)
            if row is None:
                operation = "insert"
            else:
                taken.add(row)
            key = f"{self.key_prefix}-c{self.rng.randrange(64)}"
            planned.append(_Planned(operation, row, key))
        return planned

    def _size(self) -> int:
        if self.rng.random() >= self.mix.transactions:
            return 1
        low, high = self.mix.transaction_size
        return self.rng.randint(low, high)

    # -- writing ------------------------------------------------------------------------------------
    def write(self, count: int) -> None:
        """``count`` changes, in transactions of drawn sizes (the last one cut to fit)."""
        done = 0
        while done < count:
            planned = self._plan(min(self._size(), count - done))
            self._transaction(planned)
            done += len(planned)
            self.written += len(planned)

    def _payload(self, number: int) -> bytes:
        return version_payload(number, self.rng.randbytes(self.filler // 2 + 1).hex().encode()[:self.filler])

    def _transaction(self, planned: list[_Planned]) -> None:
        txn, first = self.log.begin(), self.log.next_number()
        token = f"{self._token}-{txn}"
        after: dict[int, str | None] = {}  # row -> key once committed (None: gone)
        outcome = "ok"
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=10, options=WRITER_OPTIONS)
        except psycopg.OperationalError:
            self.outcomes["failed"] += len(planned)
            return  # never reached the database: nothing to record
        try:
            with conn.cursor() as cur:
                for change in planned:
                    self._send(cur, change, txn, after)
                cur.execute(sql.SQL("INSERT INTO {} (token) VALUES (%s)").format(sql.Identifier(self.marks)), (token,))
            try:
                conn.commit()
            except psycopg.Error:
                outcome = "indeterminate" if conn.broken or conn.closed else "failed"
        except psycopg.Error:
            # A statement failed: the transaction is rolled back (or, on a broken link, never committed).
            outcome = "failed"
        finally:
            conn.close()
        self.log.settle(first, outcome, token)
        self.outcomes[outcome] += len(planned)
        self._settle_rows(after, outcome)

    def _settle_rows(self, after: dict[int, str | None], outcome: str) -> None:
        if outcome == "ok":
            for row, key in after.items():
                if key is None:
                    self._drop(row)
                else:
                    self._keep(row, key)
        elif outcome == "indeterminate":
            for row in after:  # retired: its history is complete whichever way the commit went
                self._drop(row)

    def _send(self, cur: psycopg.Cursor, change: _Planned, txn: int, after: dict[int, str | None]) -> None:
        table, log = sql.Identifier(self.table), self.log
        number = log.next_number()
        if change.operation == "insert":
            payload = self._payload(number)
            cur.execute(sql.SQL("INSERT INTO {} (key, payload, token) VALUES (%s, %s, %s) RETURNING id").format(table),
                        (change.key, payload, f"{self._token}-c{number}"))
            new_row = int(cur.fetchone()[0])  # type: ignore[index]
            log.add(new_row, INSERT, txn, payload)
            after[new_row] = change.key
            return
        if change.row is None:
            raise HarnessError(f"change writer: a {change.operation} without a row")
        row = change.row
        if change.operation == "delete":
            log.add(row, DELETE, txn)
            cur.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(table), (row,))
            after[row] = None
        elif change.operation == "key_change":
            self._move(cur, row, txn, after)
        else:
            payload = self._payload(number)
            key = change.key if change.operation == "key_update" else self.live[row]
            log.add(row, KEY_UPDATE if change.operation == "key_update" else UPDATE, txn, payload)
            cur.execute(sql.SQL("UPDATE {} SET key = %s, payload = %s WHERE id = %s").format(table),
                        (key, payload, row))
            after[row] = key

    def _move(self, cur: psycopg.Cursor, row: int, txn: int, after: dict[int, str | None]) -> None:
        """A primary-key change: the row takes a fresh id from the table's own sequence (ids stay
        unique and never reused), with a new version."""
        table, log = sql.Identifier(self.table), self.log
        out = log.add(row, MOVE_OUT, txn)
        payload = version_payload(log.next_number(), b"moved")
        cur.execute(sql.SQL("UPDATE {} SET id = nextval(pg_get_serial_sequence(%s, 'id')), payload = %s "
                            "WHERE id = %s RETURNING id").format(table), (self.table, payload, row))
        new_row = int(cur.fetchone()[0])  # type: ignore[index]
        into = log.add(new_row, MOVE_IN, txn, payload)
        log.moves[out] = into
        after[row], after[new_row] = None, self.live[row]

    def resolve(self) -> None:
        """Transactions of unknown outcome read back from the source (by their marks)."""
        if not self.log.tokens:
            return
        tokens = {token: txn for txn, token in self.log.tokens.items()}
        query = sql.SQL("SELECT token FROM {} WHERE token = ANY(%s)").format(sql.Identifier(self.marks))
        try:
            with psycopg.connect(self.dsn, connect_timeout=10, autocommit=True) as conn:
                found = [tokens[t] for (t,) in conn.execute(query, (list(tokens),)).fetchall()]
        except psycopg.Error as exc:
            self.resolve_error = f"{exc.__class__.__name__}: {exc}"
            return
        self.log.resolve(found)
