"""Redis cannot persist (a snapshot fails: its disk refuses) and answers MISCONF to every write
until one succeeds. A refusal that passes: retried and counted, never a crash, nothing lost."""

from harness.scenario import Expect, RedisRefuseWrites, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_persistence_failing",
    description="Redis answers MISCONF (its snapshot failed) to writes for 3s: retried, nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", RedisRefuseWrites("misconf"), at=0.5, duration=3.0),),
    expect=Expect(errors_surfaced=True),
    during_s=5.0,
)
