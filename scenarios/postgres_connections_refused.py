"""The exporter's role may open no connection for 3s (CONNECTION LIMIT 0, its sessions ended):
"too many connections" is transient; reads resume from the checkpoint, nothing lost."""

from harness.scenario import Expect, PostgresConnectionLimit, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_connections_refused",
    description="Postgres refuses the exporter's connections for 3s: retried, nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", PostgresConnectionLimit(0), at=0.5, duration=3.0),),
    expect=Expect(errors_surfaced=True),
    during_s=5.0,
)
