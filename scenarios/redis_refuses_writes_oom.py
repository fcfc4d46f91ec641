"""Redis out of memory (maxmemory with noeviction) while the link is fine: every append refused.

fatal-on-transient-timeout, refusal edition: an OOM that passes must be retried with backoff and
counted, never a crash loop of the exporter's workers, and nothing written meanwhile is lost.
"""

from harness.scenario import Expect, RedisRefuseWrites, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_refuses_writes_oom",
    description="Redis answers OOM to every write for 4s: retried and counted, no crash loop, nothing lost",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", RedisRefuseWrites("oom"), at=0.5, duration=4.0),),
    expect=Expect(errors_surfaced=True),
    during_s=6.0,
)
