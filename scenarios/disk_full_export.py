"""export-lost-to-disk-and-encoding (disk half): an export that runs out of disk must fail cleanly."""

from harness.scenario import DiskFull, Expect, Export, Scenario, Step, Workload

SCENARIO = Scenario(
    name="disk_full_export",
    description="File export onto a 128 KiB tmpfs: the job fails with a clear error, no half file, nothing lost",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=1600, profile="ascii", size=200, chunk=400),
    steps=(
        Step("during", DiskFull(size_kib=128), at=0.0, duration=5.0),
        Step("during", Export("full.jsonl", expect_state="failed"), at=0.5),
    ),
    expect=Expect(),
    catches=("ignore_enospc",),
    # The guard would refuse a nearly full disk up front; here the disk fills during the job.
    knobs={"disk_usage_threshold": "1.0"},
    during_s=5.0,
)
