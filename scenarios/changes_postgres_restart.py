"""Postgres restarted under a change workload: the writer's transactions in flight end committed,
rolled back or unknown (read back before judging); the reader's session and a connector's
replication stream break mid-transaction. Every committed change must arrive, none that was
rolled back."""

from harness.scenario import ChangeMix, Expect, RestartService, Scenario, Step, Workload

SCENARIO = Scenario(
    name="changes_postgres_restart",
    description="Postgres restarted under a change workload: committed changes all arrive, rolled-back ones never",
    workload=Workload(records=100, changes=ChangeMix(count=600, transactions=0.5, chunk=30), meet_faults=10),
    steps=(Step("during", RestartService("postgres"), at=0.5, duration=2.0),),
    expect=Expect(),
    during_s=4.0,
)
