"""export-lost-to-disk-and-encoding: permission denied on the file sink and on the export directory."""

from harness.scenario import Expect, Export, ReadOnlyDir, Scenario, Step, Workload

SCENARIO = Scenario(
    name="permission_denied",
    description="File sink and export dir refuse writes: the sink retries until allowed, the export job fails "
                "cleanly, nothing lost",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=400, chunk=50),
    steps=(
        Step("during", ReadOnlyDir("file_sink"), at=0.0, duration=3.0),
        Step("during", ReadOnlyDir("export_dir"), at=0.0, duration=3.0),
        Step("during", Export("denied.jsonl", expect_state="failed"), at=0.5),
    ),
    expect=Expect(errors_surfaced=True),
    sink="file",
    during_s=4.0,
)
