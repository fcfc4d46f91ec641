"""Changes while the exporter is SIGKILLed between the events of transactions and key changes:
small pages cut transactions and key changes in two, so a kill lands between their events. The
events a crash interrupts must all come again (at least once), in commit order per row."""

from harness.scenario import ChangeMix, Expect, FreezeExporter, KillExporter, Scenario, Step, Workload

SCENARIO = Scenario(
    name="changes_exporter_killed",
    description="Exporter SIGKILLed twice and frozen once under a change workload, pages smaller than its "
                "transactions: every version, delete and key change arrives, whole, in order",
    workload=Workload(records=200, changes=ChangeMix(count=1200, transactions=0.6, transaction_size=(3, 8),
                                                     hot=0.4, chunk=60), meet_faults=20),
    steps=(
        Step("during", KillExporter(), at=0.5, duration=0.5),
        Step("during", KillExporter(), at=2.0, duration=0.5),
        Step("during", FreezeExporter(), at=3.5, duration=2.0),
    ),
    expect=Expect(),
    knobs={"batch_size": "7"},
    during_s=6.0,
)
