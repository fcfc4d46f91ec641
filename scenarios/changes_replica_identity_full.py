"""The change workload with the source table's REPLICA IDENTITY FULL: a CDC connector's update and
delete events then carry the whole old row, and ``before_images`` holds each to the version the
row had before the change (with the default identity, ``changes_baseline``, to no old payload)."""

from harness.scenario import ChangeMix, Expect, Scenario, Workload

SCENARIO = Scenario(
    name="changes_replica_identity_full",
    description="Change workload under REPLICA IDENTITY FULL: every before image is the row's previous version",
    workload=Workload(records=50, changes=ChangeMix(count=300, hot=0.5)),
    expect=Expect(max_duplicates=0),
    knobs={"replica_identity": "full"},
    during_s=2.0,
)
