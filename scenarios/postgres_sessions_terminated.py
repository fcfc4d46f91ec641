"""fatal-on-transient-timeout, Postgres edition: the exporter's sessions are terminated every
half second for 4s (pg_terminate_backend, a failover or an admin's cleanup). Each reconnect must
be a retry, never an exit, and the checkpoint never moves past what was not read."""

from harness.scenario import Expect, PostgresTerminateSessions, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_sessions_terminated",
    description="The exporter's Postgres sessions killed every 0.5s for 4s: reconnects, nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", PostgresTerminateSessions(every_s=0.5), at=0.5, duration=4.0),),
    expect=Expect(errors_surfaced=True),
    during_s=6.0,
)
