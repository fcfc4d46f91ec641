"""A planned switchover of the source: the Postgres primary is shut down cleanly while records
flow (its streaming standby receives every WAL record first) and the standby promoted; the
exporter's proxy now leads to the new primary and its connections to the old one are cut.
Nothing committed is lost: every acknowledged write must arrive (writes refused while no
primary answered were never acknowledged)."""

from harness.scenario import Expect, PostgresFailover, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_switchover",
    description="Postgres switched over to its standby while records flow: the exporter follows the new primary, "
                "nothing lost",
    workload=Workload(records=2000, chunk=100, meet_faults=100),
    steps=(Step("during", PostgresFailover(lag="none"), at=0.5, duration=1.0),),
    expect=Expect(),
    catches=("new_primary_starts_at_newest",),
    during_s=3.0,
)
