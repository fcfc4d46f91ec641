"""pause-grace-never-fires, by a clock that runs slow: deliveries are stalled (the Kafka link is
down), a pause is asked with a 2s grace, and the exporter's wall clock runs at a tenth of real
time (a VM's clock source gone bad, NTP slewing hard). A grace kept on the monotonic clock ends
on time; one kept on the wall clock would take twenty seconds."""

from harness.scenario import ClockDrift, Expect, LinkDown, Pause, Resume, Scenario, Step, Workload

SCENARIO = Scenario(
    name="pause_grace_clock_drift",
    description="Wall clock runs at 0.1x while a pause waits out its 2s grace (Kafka down): it still ends on time",
    incident="pause-grace-never-fires",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.5, duration=5.0),
        Step("during", ClockDrift(rate=0.1), at=0.8, duration=4.9),
        Step("during", Pause(grace_s=2.0), at=1.0),
        Step("after", Resume()),
    ),
    expect=Expect(pause_within_grace=True),
    catches=("pause_grace_on_wall_clock",),
    during_s=6.0,
)
