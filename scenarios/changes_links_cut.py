"""Changes while the links to Postgres and to Kafka are cut in turn: reads and sends fail in the
middle of transactions and bursts of updates of one row; nothing may be skipped or reordered."""

from harness.scenario import ChangeMix, Expect, LinkDown, Scenario, Step, Workload

SCENARIO = Scenario(
    name="changes_links_cut",
    description="Postgres then Kafka link down under a change workload: every version arrives, in commit order, "
                "and the sink converges on the source",
    workload=Workload(records=200, changes=ChangeMix(count=900, hot=0.5, burst=10, chunk=45), meet_faults=20),
    steps=(
        Step("during", LinkDown("postgres"), at=0.5, duration=2.0),
        Step("during", LinkDown("kafka"), at=3.0, duration=2.5),
    ),
    expect=Expect(),
    during_s=6.0,
)
