"""export-lost-to-disk-and-encoding, and "acknowledged before durable" (vectordotdev/vector 13714):
the machine under the file sink crashes twice mid-stream, keeping only what was fsynced. What the
exporter confirmed (and so took out of its buffer) must have been on disk."""

from harness.scenario import CrashLosingUnsynced, Expect, Scenario, Step, Workload

SCENARIO = Scenario(
    name="file_sink_crash_unsynced",
    description="File sink: two crashes that keep only fsynced data, mid-stream; nothing confirmed is lost",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=2000, size=200, chunk=200),
    steps=(
        Step("during", CrashLosingUnsynced(directory="file_sink"), at=1.0, duration=0.5),
        Step("during", CrashLosingUnsynced(directory="file_sink"), at=3.0, duration=0.5),
    ),
    expect=Expect(),
    catches=("file_sink_syncs_lazily",),
    sink="file",
    during_s=5.0,
)
