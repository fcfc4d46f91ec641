"""Postgres restarted under the reader (and under the workload: its writes fail or are indeterminate)."""

from harness.scenario import Expect, RestartService, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_restart",
    description="Postgres stopped and restarted: the reader retries, failed writes are not expected, nothing lost",
    workload=Workload(records=600, chunk=60),
    steps=(Step("during", RestartService("postgres"), at=0.5, duration=2.0),),
    expect=Expect(errors_surfaced=True),
    during_s=4.0,
)
