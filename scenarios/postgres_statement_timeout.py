"""A statement timeout far below what a read takes (1 ms) for the exporter's role for 3s: every
read is cancelled, retried, and reading resumes at the checkpoint once the setting is gone."""

from harness.scenario import Expect, PostgresStatementTimeout, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_statement_timeout",
    description="Every exporter statement cancelled after 1 ms for 3s: retried, nothing skipped",
    incident="timeouts-too-tight",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", PostgresStatementTimeout(timeout_ms=1), at=0.5, duration=3.0),),
    expect=Expect(),
    during_s=5.0,
)
