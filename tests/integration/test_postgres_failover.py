"""The local backend's Postgres standby on real servers: copied through its own replication link,
behind once that link is cut, promoted when the primary is killed (what the primary committed
after the cut is gone, the sequence carried past it), and put away by the next reset, the
original primary serving again with everything it had."""

from __future__ import annotations

import psycopg
import pytest

from harness.infra.stack import Stack
from harness.infra.waiting import wait_for

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(180)]


def _ids(dsn: str) -> list[int]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM failover_probe ORDER BY id").fetchall()]


def _insert(dsn: str, n: int) -> list[int]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return [int(r[0]) for r in conn.execute(
            "INSERT INTO failover_probe (v) SELECT g FROM generate_series(1, %s) g RETURNING id", (n,)).fetchall()]


@pytest.mark.parametrize("planned", [False, True])
def test_a_failover_keeps_what_reached_the_standby_and_a_reset_brings_the_primary_back(fresh_stack: Stack,
                                                                                        planned: bool) -> None:
    if fresh_stack.backend.name != "local":
        pytest.skip("only the local backend runs a standby")
    backend, original = fresh_stack.backend, fresh_stack.postgres.direct
    with psycopg.connect(fresh_stack.postgres_dsn(proxied=False), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS failover_probe")
        conn.execute("CREATE TABLE failover_probe (id BIGSERIAL PRIMARY KEY, v INT)")
    before = _insert(fresh_stack.postgres_dsn(proxied=False), 50)
    started = backend.start_replica("postgres")
    assert started["in_recovery"] is True
    if not planned:
        backend.cut_replication("postgres", True)
    after_cut = _insert(fresh_stack.postgres_dsn(proxied=False), 50)
    evidence = backend.fail_over("postgres", planned=planned)
    assert evidence["in_recovery_after"] is False and fresh_stack.postgres.direct != original
    held = _ids(fresh_stack.postgres_dsn(proxied=True))  # through the clients' proxy: the new primary
    if planned:
        assert held == before + after_cut and evidence["gap_bytes"] <= 0
    else:
        assert held == before and evidence["gap_bytes"] > 0  # committed after the cut: gone with the old primary
    assert min(_insert(fresh_stack.postgres_dsn(proxied=True), 1)) > max(after_cut)  # no id handed out twice
    fresh_stack.reset()
    assert fresh_stack.postgres.direct == original
    assert _ids(fresh_stack.postgres_dsn(proxied=True))[:100] == before + after_cut  # the original primary again


def test_a_killed_old_primary_rejoins_as_the_new_primarys_standby_and_serves_again_after_a_reset(
        fresh_stack: Stack) -> None:
    if fresh_stack.backend.name != "local":
        pytest.skip("only the local backend runs a standby")
    backend, original = fresh_stack.backend, fresh_stack.postgres.direct
    old_dsn = fresh_stack.postgres_dsn(proxied=False)
    with psycopg.connect(old_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS failover_probe")
        conn.execute("CREATE TABLE failover_probe (id BIGSERIAL PRIMARY KEY, v INT)")
    before = _insert(old_dsn, 50)
    backend.start_replica("postgres")
    backend.cut_replication("postgres", True)
    _insert(old_dsn, 50)  # only the old primary gets these: the rewind throws them away
    backend.fail_over("postgres", planned=False)
    rejoin = backend.rejoin_old_primary("postgres")
    assert "Done" in rejoin["rewound"] and rejoin["old_primary_in_recovery"] is True
    written_after = _insert(fresh_stack.postgres_dsn(proxied=True), 10)  # on the new primary
    with psycopg.connect(old_dsn, autocommit=True) as conn:  # the old primary's own address: now a standby
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    wait_for(lambda: _ids(old_dsn) == before + written_after, timeout=30, interval=0.2,
             what="the rejoined old primary to replay the new primary's rows")
    fresh_stack.reset()
    assert fresh_stack.postgres.direct == original
    with psycopg.connect(fresh_stack.postgres_dsn(proxied=True), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)  # promoted back
    assert _ids(fresh_stack.postgres_dsn(proxied=True)) == before + written_after
