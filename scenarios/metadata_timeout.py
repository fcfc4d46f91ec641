"""fatal-on-transient-timeout: an etcd-like timeout on a background path must never end the process."""

from harness.scenario import Expect, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="metadata_timeout",
    description="Postgres link stalls (timeout toxic), then slows: the exporter logs, skips, stays alive, recovers",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=300, profile="ascii"),
    steps=(
        Step("during", Toxic("postgres", "timeout", attributes={"timeout": 0}), at=0.5, duration=3.0),
        Step("during", Toxic("postgres", "latency", attributes={"latency": 1500, "jitter": 200}), at=4.0, duration=2.0),
    ),
    expect=Expect(process_alive=True),
    catches=("fatal_on_timeout",),
    knobs={"source_timeout_s": "1", "metadata_poll_interval_s": "0.3"},
    during_s=6.5,
)
