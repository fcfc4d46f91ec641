"""CLIENT PAUSE WRITE on the buffer (a failover in progress): every append and delivery
acknowledgement stalls for 3s, then goes on. Stalled is not failed: nothing lost or doubled."""

from harness.scenario import Expect, RedisClientPause, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_clients_paused",
    description="Redis pauses every write for 3s (CLIENT PAUSE WRITE): stalls, then resumes, nothing lost",
    incident="timeouts-too-tight",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", RedisClientPause("write"), at=0.5, duration=3.0),),
    expect=Expect(),
    during_s=5.0,
)
