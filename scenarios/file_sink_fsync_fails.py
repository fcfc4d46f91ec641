"""export-lost-to-disk-and-encoding (the durability half): the file sink's fsync fails, as a disk
with a bad block or a thin volume out of space answers, and the kernel drops what it could not
write. A batch is confirmed only by an fsync that succeeded for it."""

from harness.scenario import Expect, FileError, Scenario, Step, Workload

SCENARIO = Scenario(
    name="file_sink_fsync_fails",
    description="File sink: three fsyncs fail with EIO and the unsynced data is dropped (fsyncgate); every "
                "failed batch is written again, nothing confirmed is lost",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=1000, size=200, chunk=100),
    steps=(Step("during", FileError(directory="file_sink", operation="fsync", errno="EIO", path="records.jsonl",
                                    nth=2, times=3), at=0.0, duration=4.0),),
    expect=Expect(errors_surfaced=True),
    catches=("fsync_retried_after_error",),
    sink="file",
    during_s=5.0,
)
