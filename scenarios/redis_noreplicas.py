"""Redis refuses writes for want of replicas (min-replicas-to-write): NOREPLICAS is transient."""

from harness.scenario import Expect, RedisRefuseWrites, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_noreplicas",
    description="Redis answers NOREPLICAS to writes for 3s: retried and counted, nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", RedisRefuseWrites("noreplicas"), at=0.5, duration=3.0),),
    expect=Expect(errors_surfaced=True),
    during_s=5.0,
)
