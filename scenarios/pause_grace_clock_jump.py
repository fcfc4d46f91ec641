"""pause-grace-never-fires, by the clock: deliveries are stalled (the Kafka link is down), a pause
is asked with a 2s grace, and a moment later the exporter's wall clock steps back an hour (an
NTP step, a VM resumed). Its monotonic clock does not move: a grace kept on it still ends on
time, the pause says it did not drain, and every record arrives after the resume."""

from harness.scenario import ClockJump, Expect, LinkDown, Pause, Resume, Scenario, Step, Workload

SCENARIO = Scenario(
    name="pause_grace_clock_jump",
    description="Wall clock steps back 1h while a pause waits out its grace (Kafka down): it still ends on time",
    incident="pause-grace-never-fires",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.5, duration=5.0),
        Step("during", Pause(grace_s=2.0), at=1.0),
        Step("during", ClockJump(seconds=-3600), at=1.2, duration=4.5),
        Step("after", Resume()),
    ),
    expect=Expect(pause_within_grace=True),
    catches=("pause_grace_on_wall_clock",),
    during_s=6.0,
)
