"""Quotas and the disk-usage guard under concurrent job submissions: 429 and 503 as promised."""

from harness.scenario import DiskFull, Expect, ExportBurst, Scenario, Step, Workload

SCENARIO = Scenario(
    name="export_quotas",
    description="Concurrent export submissions: the disk guard answers 503, the quota 429; every accepted job "
                "completes whole",
    workload=Workload(records=200),
    steps=(
        Step("during", DiskFull(size_kib=256, fill=0.9), at=0.0, duration=2.0),
        Step("during", ExportBurst(jobs=2, users=1, accepted_per_user=0, refused_status=503), at=0.2),
        Step("after", ExportBurst(jobs=4, users=2, accepted_per_user=2, refused_status=429)),
    ),
    expect=Expect(),
    knobs={"quota_jobs_per_hour": "2"},
    during_s=2.0,
)
