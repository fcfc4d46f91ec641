"""What the exporter ran against its source table, counted by Postgres itself: pg_stat_statements'
calls per statement, for the exporter's own role, of the statements that name the source table.

A pause is honoured at the source when none of these grew between its acknowledgement and its
resume beyond the target's declared polls (``paused_statements``: a lag poll such as ``max(id)`` reads
no records); harness.checks.pauses compares the two marks. The counters are Postgres's, updated
when a statement ends, so nothing the harness samples can miss a short read; the harness's own
statements run under another role and are not counted. Not measurable (and said so, never passed
silently): the exporter shares the harness's role, the server has no pg_stat_statements loaded,
or Postgres cannot be reached at that instant.
"""

from __future__ import annotations

import psycopg

from harness.infra.stack import Stack
from harness.report.journal import SourceStatements

STATEMENT_TEXT_MAX = 160  # characters of a statement kept for the report
# The harness's own statements made as the exporter's role (a step's probe of what the exporter
# would be told) carry this comment, which Postgres keeps: they are never counted as its reads.
HARNESS_MARK = "/* faultline probe as the exporter */ "


def source_statements(stack: Stack, table: str) -> SourceStatements:
    if stack.exporter is None:
        return SourceStatements(unmeasured="the exporter shares the harness's Postgres role: its statements "
                                           "cannot be told apart")
    role = stack.exporter.postgres_user
    try:
        with psycopg.connect(stack.admin_url("postgres"), autocommit=True, connect_timeout=3) as conn:
            conn.execute("SET statement_timeout = 3000")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            rows = conn.execute(
                "SELECT s.query, sum(s.calls)::bigint FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                "WHERE r.rolname = %s AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND position(%s in s.query) > 0 AND position(%s in s.query) = 0 GROUP BY s.query",
                (role, table, HARNESS_MARK.strip())).fetchall()
    except psycopg.Error as exc:
        return SourceStatements(unmeasured=f"pg_stat_statements could not be read ({exc.__class__.__name__}: "
                                           f"{str(exc).strip()[:160]})")
    calls: dict[str, int] = {}
    for query, n in rows:
        text = " ".join(str(query).split())[:STATEMENT_TEXT_MAX]
        calls[text] = calls.get(text, 0) + int(n)
    return SourceStatements(calls)
