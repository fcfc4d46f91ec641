"""export-lost-to-disk-and-encoding ("tools reporting success after a failed open, unchecked
flush/close"): an export job's rename, write and close fail once each, with errors a full quota,
a bad disk and a network file system give. Each job fails with the error named and no file under
its final name, or finishes with every row."""

from harness.scenario import Expect, Export, FileError, Scenario, Step, Workload

SCENARIO = Scenario(
    name="export_file_errors",
    description="Export jobs meet EDQUOT on a write, EIO on a close and EXDEV on the rename: each fails cleanly, "
                "nothing half-written under a final name, nothing lost",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=1200, profile="ascii", size=200, chunk=300),
    steps=(
        Step("during", FileError(directory="export_dir", operation="write", errno="EDQUOT", path="*.partial"),
             at=0.0, duration=1.5),
        Step("during", Export("quota.jsonl", expect_state="failed"), at=0.3),
        Step("during", FileError(directory="export_dir", operation="close", errno="EIO", path="*.partial", nth=2),
             at=1.6, duration=1.5),
        Step("during", Export("closed.jsonl", expect_state="failed"), at=1.9),
        Step("during", FileError(directory="export_dir", operation="rename", errno="EXDEV", path="renamed.jsonl"),
             at=3.2, duration=1.5),
        Step("during", Export("renamed.jsonl", expect_state="failed"), at=3.5),
    ),
    expect=Expect(),
    during_s=5.0,
)
