"""An unplanned failover of the source: the standby's replication link is cut for 2 s while
records flow, then the primary is killed (and stays down) and the standby promoted with what it
had. What the old primary committed after the cut is gone from the source itself: the harness
reads back which acknowledged writes the new primary lacks and judges those neither way. Every
other acknowledged write must arrive: the exporter must reconnect to the new primary and not
skip what it holds (its checkpoint may be ahead of rows the new primary has, as it read rows the
standby never got). The old primary then rejoins as the new primary's standby (``pg_rewind``
throws away what only it had), as an operator restores redundancy, while the exporter drains."""

from harness.scenario import Expect, PostgresFailover, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_failover_behind",
    description="Postgres fails over to a standby 2 s behind while records flow: the exporter follows the new "
                "primary and loses nothing it still holds",
    workload=Workload(records=3000, chunk=100, meet_faults=100),
    steps=(Step("during", PostgresFailover(lag="cut", old_primary="rejoined"), at=0.5, duration=2.0),),
    expect=Expect(),
    during_s=4.0,
)
