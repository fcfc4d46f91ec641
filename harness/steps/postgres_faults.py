"""Postgres answering with errors or waits while the link is fine: a table lock held by another
session, the exporter's sessions terminated, its role made read-only, refused connections or
given a statement timeout. Applied as the administrator, aimed at the exporter's own role (the
harness's sessions are untouched), read back as evidence, undone when the window ends."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import psycopg
from psycopg import sql
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.credentials import provision_postgres
from harness.infra.waiting import WaitTimeout, wait_for
from harness.model.capabilities import Need
from harness.rig.source_reads import HARNESS_MARK
from harness.steps.base import STRICT, Background, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.infra.credentials import ExporterCredentials
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

LockMode = Literal["ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
                   "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"]


def admin_connection(run: StepContext) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(run.stack.admin_url("postgres"), autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise HarnessError(f"postgres: cannot connect as the administrator: {exc}") from exc


def _admin(run: StepContext, what: str, statement: sql.SQL | sql.Composed,
           params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    try:
        with admin_connection(run) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as exc:
        raise HarnessError(f"postgres: cannot {what}: {exc}") from exc


def exporter_creds(run: StepContext) -> ExporterCredentials:
    creds = run.stack.exporter
    assert creds is not None, "the step needs credentials:exporter"
    return creds


def terminate_exporter_sessions(run: StepContext) -> int:
    """End every session of the exporter's role (it reconnects and meets the new settings)."""
    role = exporter_creds(run).postgres_user
    rows = _admin(run, "terminate the exporter's sessions", sql.SQL(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s"), (role,))
    return int(rows[0][0]) if rows else 0


def probe_as_exporter(run: StepContext, query: str = "SELECT 1", timeout_s: float = 2.0) -> str:
    """What the exporter's role gets now for ``query`` (straight to the server): ``ok`` or the error."""
    try:
        with psycopg.connect(run.stack.exporter_postgres_dsn(proxied=False), connect_timeout=2,
                             options=f"-c lock_timeout={int(timeout_s * 1000)}") as conn:
            conn.execute(sql.SQL(HARNESS_MARK + query))  # marked: not the exporter's read (rig.source_reads)
            return "ok"
    except psycopg.Error as exc:
        return f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0]}"


@step_kind
@dataclass(frozen=True, config=STRICT)
class PostgresLockTable(StepKind):
    """Another session holds a lock of ``mode`` on the source table for the window (ACCESS
    EXCLUSIVE blocks even reads: the exporter's queries wait, then time out)."""

    kind_name: ClassVar[str] = "postgres_lock_table"
    mode: LockMode = "ACCESS EXCLUSIVE"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresLockTable:
        return cls(mode=rng.choice(("ACCESS EXCLUSIVE", "EXCLUSIVE", "SHARE")))

    def describe(self) -> str:
        return f"postgres table lock {self.mode} held"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("postgres")})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        """The lock is asked for on a session of its own and the timeline goes on once it is held
        or queued: queued behind a transaction another step holds open (held_transaction), it is
        granted when that one ends, and meanwhile every later statement on the table queues behind
        it (the ALTER TABLE behind a long transaction incident). Waiting here for the grant would
        wait on a later step's removal for ever."""
        conn = admin_connection(run)
        run.closers.append(conn.close)  # closing the session releases (or ends the wait for) the lock
        conn.autocommit = False
        statement = sql.SQL("LOCK TABLE {} IN {} MODE").format(sql.Identifier(run.ctx.source_table),
                                                                sql.SQL(self.mode))
        request = _LockRequest(conn, statement)
        request.start()
        state = request.settled(run, LOCK_SEEN_S)
        if request.error is not None:
            conn.close()
            raise HarnessError(f"postgres: cannot lock {run.ctx.source_table}: {request.error}")
        probe = probe_as_exporter(run, f"SELECT count(*) FROM {run.ctx.source_table}", timeout_s=0.5)
        record.evidence = f"lock {state}; a read as the exporter: {probe}"
        return request

    def remove(self, run: StepContext, handle: _LockRequest, record: StepRecord) -> None:
        if handle.is_alive():  # still queued: end the wait, or the lock is granted after its window
            _admin(run, "cancel a queued lock", sql.SQL("SELECT pg_cancel_backend(%s)"), (handle.pid,))
            handle.join(timeout=LOCK_SEEN_S)
            record.evidence += "; never granted in its window (the wait was cancelled)"
        try:
            handle.conn.rollback()
        except psycopg.Error as exc:  # a cancelled wait left the session failed: closing ends it all the same
            record.evidence += f"; rollback: {exc.__class__.__name__}"
        handle.conn.close()


LOCK_SEEN_S = 5.0  # a lock request shows in pg_locks (granted or queued) within this


class _LockRequest(threading.Thread):
    """``LOCK TABLE`` on its own session and thread: it may wait as long as Postgres makes it."""

    def __init__(self, conn: psycopg.Connection[Any], statement: sql.Composed) -> None:
        super().__init__(name="postgres-lock-request", daemon=True)
        self.conn, self.statement = conn, statement
        self.pid = conn.info.backend_pid
        self.error: str | None = None

    def run(self) -> None:
        try:
            self.conn.execute(self.statement)
        except psycopg.Error as exc:  # cancelled at removal, or refused: kept for apply to report
            self.error = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"

    def settled(self, run: StepContext, timeout_s: float) -> str:
        """"held (...)" or "queued behind pid(s) [...]", read from pg_locks as soon as it shows."""

        def state() -> str | None:
            if not self.is_alive() and self.error is not None:
                return "refused"
            rows = _admin(run, "read the lock's state", sql.SQL(
                "SELECT mode, granted, pg_blocking_pids(pid) FROM pg_locks WHERE relation = %s::regclass AND pid = %s"),
                (run.ctx.source_table, self.pid))
            if rows and rows[0][1]:
                return f"held: {[(mode, granted) for mode, granted, _ in rows]}"
            if rows:
                return f"{rows[0][0]} queued behind pid(s) {rows[0][2]} (granted when they end)"
            return None  # not asked for yet

        try:
            return wait_for(state, timeout=timeout_s, interval=0.05, what="the lock request to show in pg_locks")
        except WaitTimeout as exc:
            raise HarnessError(f"postgres: the lock request on {run.ctx.source_table} did not show in pg_locks "
                               f"within {timeout_s:.0f}s") from exc


class _RoleFault(StepKind):
    """A change to the exporter's role, in force for new sessions: its sessions are ended at apply
    so that it meets the change at once; the role is restored in full when the window ends."""

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("postgres"), Need.exporter_credentials()})

    def change(self, role: sql.Identifier) -> sql.Composed:
        raise NotImplementedError

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        creds = exporter_creds(run)
        run.closers.append(lambda: provision_postgres(run.stack, creds))
        _admin(run, self.describe(), self.change(sql.Identifier(creds.postgres_user)))
        ended = terminate_exporter_sessions(run)
        record.evidence = f"{ended} exporter session(s) ended; a new one gets: {probe_as_exporter(run, self.probe)}"

    probe: ClassVar[str] = "SELECT 1"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        provision_postgres(run.stack, exporter_creds(run))
        record.evidence += f"; after: {probe_as_exporter(run, self.probe)}"


@step_kind
@dataclass(frozen=True, config=STRICT)
class PostgresConnectionLimit(_RoleFault):
    """The exporter's role may open at most ``limit`` connections (0: every connection refused)."""

    kind_name: ClassVar[str] = "postgres_connection_limit"
    limit: Annotated[int, Field(ge=0, le=10_000)] = 0

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresConnectionLimit:
        return cls(limit=rng.choice((0, 1, 2)))

    def describe(self) -> str:
        return f"postgres connection limit {self.limit} for the exporter"

    def change(self, role: sql.Identifier) -> sql.Composed:
        return sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(role, sql.Literal(self.limit))


@step_kind
@dataclass(frozen=True, config=STRICT)
class PostgresReadOnly(_RoleFault):
    """The exporter's transactions are read-only (``default_transaction_read_only``)."""

    kind_name: ClassVar[str] = "postgres_read_only"
    probe: ClassVar[str] = "CREATE TEMP TABLE faultline_probe (x int)"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresReadOnly:
        return cls()

    def describe(self) -> str:
        return "postgres transactions read-only for the exporter"

    def change(self, role: sql.Identifier) -> sql.Composed:
        return sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role)


@step_kind
@dataclass(frozen=True, config=STRICT)
class PostgresStatementTimeout(_RoleFault):
    """Every statement of the exporter's role is cancelled after ``timeout_ms``."""

    kind_name: ClassVar[str] = "postgres_statement_timeout"
    timeout_ms: Annotated[int, Field(ge=1, le=3_600_000)] = 5
    probe: ClassVar[str] = "SELECT pg_sleep(0.2)"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresStatementTimeout:
        return cls(timeout_ms=rng.choice((1, 5, 50)))

    def describe(self) -> str:
        return f"postgres statement timeout {self.timeout_ms} ms for the exporter"

    def change(self, role: sql.Identifier) -> sql.Composed:
        return sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(role, sql.Literal(self.timeout_ms))


@step_kind
@dataclass(frozen=True, config=STRICT)
class PostgresTerminateSessions(StepKind):
    """The exporter's sessions are terminated at apply and, with ``every_s``, again and again
    through the window (a flapping server side: each reconnect works until the next cut)."""

    kind_name: ClassVar[str] = "postgres_terminate_sessions"
    every_s: Annotated[float, Field(gt=0.05, le=3600)] | None = None

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresTerminateSessions:
        return cls(every_s=rng.choice((None, 0.5, 1.5)))

    def describe(self) -> str:
        return "postgres ends the exporter's sessions" + (f" every {self.every_s}s" if self.every_s else "")

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("postgres"), Need.exporter_credentials()})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        ended = [terminate_exporter_sessions(run)]
        record.evidence = f"{ended[0]} exporter session(s) ended"
        if self.every_s is None:
            return None, ended
        interval = self.every_s

        def again(stop: threading.Event) -> None:
            while not stop.wait(interval):
                try:
                    ended.append(terminate_exporter_sessions(run))
                except HarnessError:
                    return  # the server is away (another fault): nothing to end; the window goes on

        return Background(run, "terminate-sessions", again), ended

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        repeating, ended = handle
        if repeating is not None:
            repeating.stop()
        record.evidence = f"{sum(ended)} exporter session(s) ended in {len(ended)} round(s)"
