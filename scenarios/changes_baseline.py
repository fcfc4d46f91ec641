"""Changes without a fault: inserts, updates (hot rows in bursts), deletes, key changes and
transactions, every version judged per row. The reference for the change scenarios, and what
catches a change path that drops deletes or coalesces versions (no fault needed to lose them)."""

from harness.scenario import ChangeMix, Expect, Scenario, Workload

SCENARIO = Scenario(
    name="changes_baseline",
    description="Fault-free change workload: every version, delete and key change delivered, in order, converged",
    workload=Workload(records=100, changes=ChangeMix(count=400, hot=0.5, burst=6)),
    expect=Expect(max_duplicates=0),
    catches=("deletes_dropped", "changes_coalesced_per_page", "key_change_as_update"),
    during_s=2.0,
)
