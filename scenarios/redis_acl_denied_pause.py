"""pause-grace-never-fires, with Redis answering NOPERM: an ACL change denies the exporter's user
the buffer commands while an operator pauses. The pause must end within grace with the cause
named (never a 500, never stuck in 'pausing'), and nothing is lost after resume."""

from harness.scenario import Expect, Pause, RedisDenyCommands, Resume, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_acl_denied_pause",
    description="The exporter's Redis user is denied the buffer commands; a pause inside ends within grace",
    incident="pause-grace-never-fires",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(
        Step("during", RedisDenyCommands(("xadd", "xreadgroup", "xpending", "xlen", "get", "set")), at=0.5,
             duration=4.0),
        Step("during", Pause(grace_s=2.0), at=1.0),
        Step("after", Resume()),
    ),
    expect=Expect(pause_within_grace=True),
    catches=("pause_check_after_work",),
    during_s=6.0,
)
