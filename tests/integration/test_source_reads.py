"""Postgres's own statement counters see what the exporter's role ran on the source table, and
only that: the harness's statements (another role) and other tables are not counted."""

from __future__ import annotations

import psycopg
import pytest

from harness.infra.stack import Stack
from harness.rig.source_reads import HARNESS_MARK, source_statements

TABLE = "source_reads_probe"


@pytest.mark.timeout(60)
def test_the_exporters_statements_on_the_source_table_are_counted(fresh_stack: Stack) -> None:
    with psycopg.connect(fresh_stack.postgres_dsn(proxied=False), autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {TABLE}")
        admin.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY)")
        assert fresh_stack.exporter is not None
        admin.execute(f"GRANT SELECT ON {TABLE} TO {fresh_stack.exporter.postgres_user}")
        admin.execute(f"SELECT count(*) FROM {TABLE}")  # the harness's own read: not the exporter's
    before = source_statements(fresh_stack, TABLE)
    assert before.unmeasured == "", before.unmeasured
    with psycopg.connect(fresh_stack.exporter_postgres_dsn(proxied=False), autocommit=True) as exporter:
        for n in range(3):
            exporter.execute(f"SELECT id FROM {TABLE} WHERE id > %s", (n,))
        exporter.execute("SELECT 1")  # names no source table
        exporter.execute(f"{HARNESS_MARK}SELECT count(*) FROM {TABLE}")  # the harness's probe as the exporter
    after = source_statements(fresh_stack, TABLE)
    grown = {q: n - before.calls.get(q, 0) for q, n in after.calls.items() if n != before.calls.get(q, 0)}
    assert list(grown.values()) == [3] and f"FROM {TABLE} WHERE id >" in next(iter(grown)), grown
