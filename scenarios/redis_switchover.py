"""A planned switchover: the buffer's Redis fails over to a replica in sync. Nothing is lost, and
the exporter reconnects to the new primary (its connections to the old one are cut)."""

from harness.scenario import Expect, RedisFailover, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_switchover",
    description="Redis switched over to a replica in sync while records flow: nothing lost",
    workload=Workload(records=1500, chunk=100),
    steps=(Step("during", RedisFailover(lag="none"), at=0.5, duration=1.0),),
    expect=Expect(),
    during_s=3.0,
)
