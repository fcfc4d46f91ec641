"""Commits out of id order: rows with lower ids become visible after rows with higher ids.

Family "resume skips records" / a cursor that jumps (see ../shared/INCIDENTS.md: Debezium's
skipped events that shared one LSN, debezium/dbz 1554), seen in our own exporter as five rows of
one Locust insert lost under concurrent writers. A writer takes ids in a transaction and keeps it
open while other writers commit higher ids, which a reader sees first; then it commits. A reader
that pages with ``id > checkpoint`` has moved past the held ids by then and never reads them.
Each window is far longer than the reader's poll interval, so the bug shows on every run, not by
luck of timing.
"""

from harness.scenario import Expect, HeldTransaction, Scenario, Step, Workload

SCENARIO = Scenario(
    name="out_of_order_commits",
    description="A transaction holds lower ids open while later rows commit and are read, then commits: "
                "nothing skipped",
    workload=Workload(records=600, profile="mixed", chunk=50),
    steps=(
        Step("during", HeldTransaction(records=5, then_write=50), at=0.3, duration=2.0),
        Step("during", HeldTransaction(records=20, then_write=100), at=3.0, duration=1.5),
    ),
    expect=Expect(),
    catches=("read_past_open_transactions",),
    during_s=5.0,
)
