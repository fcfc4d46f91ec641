"""The exporter's Postgres role is made read-only (default_transaction_read_only) for 3s, as after
a failover to a standby: an exporter that only reads the source must not notice; one that writes
its bookkeeping to Postgres must retry, never lose records."""

from harness.scenario import Expect, PostgresReadOnly, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_read_only",
    description="The exporter's Postgres transactions read-only for 3s (its sessions reset): nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", PostgresReadOnly(), at=0.5, duration=3.0),),
    expect=Expect(),
    during_s=5.0,
)
