"""Redis stopped and restarted with its append-only file: the buffer and checkpoint survive."""

from harness.scenario import Expect, RestartService, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_restart_kept",
    description="Redis restarted with its data (AOF): buffer, group and checkpoint survive, nothing lost",
    workload=Workload(records=600, chunk=60),
    steps=(Step("during", RestartService("redis"), at=0.5, duration=2.0),),
    expect=Expect(errors_surfaced=True),
    during_s=4.0,
)
