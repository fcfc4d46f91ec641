"""The buffer's Redis turns into a read-only replica (a failover that went the wrong way), then
back: READONLY on every write is transient, never a reason to drop or crash."""

from harness.scenario import Expect, RedisRefuseWrites, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_readonly_failover",
    description="Redis becomes a read-only replica for 3s: writes refused with READONLY, retried, nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", RedisRefuseWrites("readonly"), at=0.5, duration=3.0),),
    expect=Expect(errors_surfaced=True),
    during_s=5.0,
)
