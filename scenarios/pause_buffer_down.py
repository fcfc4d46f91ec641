"""pause-grace-never-fires: pause requested while the buffer is unreachable must still finish."""

from harness.scenario import Expect, LinkDown, Pause, Resume, Scenario, Step, Workload

SCENARIO = Scenario(
    name="pause_buffer_down",
    description="Pause while the Redis link is down: paused within grace, cause named, nothing lost after resume",
    incident="pause-grace-never-fires",
    workload=Workload(records=300, profile="cjk"),
    steps=(
        Step("during", LinkDown("redis"), at=0.5, duration=5.0),
        Step("during", Pause(grace_s=2.0), at=1.0),
        Step("after", Resume()),
    ),
    expect=Expect(pause_within_grace=True),
    catches=("pause_check_after_work",),
    during_s=6.0,
)
