"""Redis killed and restarted empty (no persistence): the exporter must rebuild, not lose."""

from harness.scenario import Expect, RestartService, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_restart_lost",
    description="Redis killed and restarted without its data: checkpoint and buffer gone, re-read from source, "
                "duplicates allowed, nothing lost",
    workload=Workload(records=600, chunk=60),
    steps=(Step("during", RestartService("redis", kill=True, wipe=True), at=0.5, duration=2.0),),
    expect=Expect(errors_surfaced=True),
    during_s=4.0,
)
