"""export-lost-to-disk-and-encoding: the file sink's disk fills up mid-run, then is freed."""

from harness.scenario import DiskFull, Expect, Scenario, Step, Workload

SCENARIO = Scenario(
    name="file_sink_disk_full",
    description="File sink disk filled to 98% mid-run, then freed: writes retried, no half line, "
                "nothing lost",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=1000, size=200, chunk=100),
    steps=(Step("during", DiskFull(size_kib=1024, directory="file_sink", fill=0.98), at=0.0, duration=4.0),),
    expect=Expect(errors_surfaced=True),
    catches=("ignore_enospc",),
    sink="file",
    during_s=5.0,
)
