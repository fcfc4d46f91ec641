"""The Postgres protocol proxy against a real Postgres: a matching statement is answered with the
chosen SQLSTATE by the server itself (simple and extended protocol, a statement prepared before
the rule, inside a transaction whose state the server keeps), a result is cut after its rows, a
login is refused, and everything else on the connection passes."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from harness.infra.proxies.base import Trigger
from harness.infra.proxies.pgwire import RAISE_SETUP, LoginRule, PgWireProxy, StatementRule
from harness.infra.stack import Stack

TABLE = "pgwire_probe"


@pytest.fixture
def proxied(fresh_stack: Stack) -> Iterator[tuple[PgWireProxy, str]]:
    with psycopg.connect(fresh_stack.postgres_dsn(proxied=False), autocommit=True) as admin:
        for statement in RAISE_SETUP:
            admin.execute(statement)
        admin.execute(f"DROP TABLE IF EXISTS {TABLE}")
        admin.execute(f"CREATE TABLE {TABLE} AS SELECT g AS id FROM generate_series(1, 50) g")
    direct = fresh_stack.postgres.endpoint(proxied=False)
    proxy = PgWireProxy((direct.host, direct.port)).start()
    yield proxy, fresh_stack.postgres_dsn(proxied=False).replace(f":{direct.port}/", f":{proxy.port}/")
    proxy.close()


@pytest.mark.timeout(60)
def test_a_matching_statement_gets_the_sqlstate_and_the_rest_passes(proxied: tuple[PgWireProxy, str]) -> None:
    proxy, dsn = proxied
    with psycopg.connect(dsn, autocommit=True) as conn:
        proxy.add_rule(StatementRule(TABLE, "40001", trigger=Trigger(times=1)))
        assert conn.execute("SELECT 1").fetchone() == (1,)  # not matching: untouched
        with pytest.raises(psycopg.errors.SerializationFailure):
            conn.execute(f"SELECT id FROM {TABLE} WHERE id > %s", (3,))
        assert len(conn.execute(f"SELECT id FROM {TABLE} WHERE id > %s", (3,)).fetchall()) == 47
        for n in range(6):  # psycopg prepares a statement after five runs: Bind alone reaches the proxy
            conn.execute(f"SELECT id FROM {TABLE} WHERE id > %s", (n,), prepare=True).fetchall()
        proxy.add_rule(StatementRule(TABLE, "40P01", trigger=Trigger(times=1)))
        with pytest.raises(psycopg.errors.DeadlockDetected):
            conn.execute(f"SELECT id FROM {TABLE} WHERE id > %s", (3,), prepare=True)
        assert len(conn.execute(f"SELECT id FROM {TABLE} WHERE id > %s", (3,), prepare=True).fetchall()) == 47
    assert [i.answer for i in proxy.injections()] == ["40001", "40P01"]


@pytest.mark.timeout(60)
def test_the_server_keeps_the_transaction_state_of_an_injected_error(proxied: tuple[PgWireProxy, str]) -> None:
    proxy, dsn = proxied
    with psycopg.connect(dsn) as conn:
        proxy.add_rule(StatementRule(TABLE, "57014", trigger=Trigger(times=1)))
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(f"SELECT id FROM {TABLE}")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")  # the server itself refuses until the rollback
        conn.rollback()
        assert len(conn.execute(f"SELECT id FROM {TABLE}").fetchall()) == 50


@pytest.mark.timeout(60)
def test_a_result_is_cut_after_its_rows_and_a_login_refused(proxied: tuple[PgWireProxy, str]) -> None:
    proxy, dsn = proxied
    conn = psycopg.connect(dsn, autocommit=True)
    proxy.add_rule(StatementRule(TABLE, "cut", after_rows=5, trigger=Trigger(times=1)))
    with pytest.raises(psycopg.OperationalError):
        conn.execute(f"SELECT id FROM {TABLE}").fetchall()
    assert conn.closed or conn.broken
    proxy.add_rule(LoginRule("53300", trigger=Trigger(times=1)))
    with pytest.raises(psycopg.OperationalError, match="too many clients"):
        psycopg.connect(dsn, connect_timeout=5)
    with psycopg.connect(dsn, autocommit=True) as again:
        assert len(again.execute(f"SELECT id FROM {TABLE}").fetchall()) == 50
