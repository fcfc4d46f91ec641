"""A fault that passes after some attempts: the exporter's Redis connections are cut and its next
five logins refused (a credential rotation half done), then it is let in. Each refused login must
be a retry with backoff, and nothing is lost."""

from harness.scenario import Expect, RedisRefuseConnections, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_logins_refused",
    description="The exporter's Redis connections cut and its first 5 logins refused: retried, nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", RedisRefuseConnections(count=5), at=0.5, duration=4.0),),
    expect=Expect(errors_surfaced=True),
    during_s=5.0,
)
