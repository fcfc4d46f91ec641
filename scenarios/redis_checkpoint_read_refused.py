"""One command refused, not the whole server: while the exporter is killed and started again,
Redis answers its checkpoint read (GET) with BUSY, as it does while a long script runs; every
other command goes through. A reader must wait for its checkpoint, never guess one: rows written
while it was down must all arrive (the refusal is not a reason to start from the newest row)."""

from harness.scenario import KillExporter, RedisCommandError, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_checkpoint_read_refused",
    description="Redis answers GET with BUSY (every time, 4s) while the exporter is killed and restarted in it",
    incident="redis-misconf-writes-refused",
    workload=Workload(records=400, chunk=25),
    steps=(
        Step("during", RedisCommandError(command="GET", answer="BUSY", times=0), at=0.5, duration=4.0),
        Step("during", KillExporter(), at=1.0, duration=1.5),
    ),
    catches=("refused_checkpoint_starts_at_newest",),
    during_s=6.0,
)
