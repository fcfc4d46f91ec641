"""pause-grace-never-fires, the other way round: the buffer answers at once but deliveries are
stalled (Kafka 3s slow per request). The grace must expire on time, the pause say it did not
drain, and every record still arrive after resume."""

from harness.scenario import Expect, Pause, Resume, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="pause_with_deliveries_stalled",
    description="Pause while Kafka answers 3s late (buffer fine): grace expires on time, nothing lost",
    incident="pause-grace-never-fires",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(
        Step("during", Toxic("kafka", "latency", attributes={"latency": 3000}), at=0.5, duration=5.0),
        Step("during", Pause(grace_s=1.5), at=1.5),
        Step("after", Resume()),
    ),
    expect=Expect(pause_within_grace=True),
    during_s=6.0,
)
