"""timeouts-too-tight: latency and jitter on every link at once; the harness's waits scale with it."""

from harness.scenario import Expect, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="latency_all_links",
    description="300 ms latency with 100 ms jitter on every link, then a bandwidth cap on Kafka: slower, nothing lost",
    incident="timeouts-too-tight",
    workload=Workload(records=500, profile="mixed", chunk=50),
    steps=tuple(Step("during", Toxic(link, "latency", attributes={"latency": 300, "jitter": 100}), at=0.0,
                     duration=5.0) for link in ("postgres", "redis", "kafka"))
    + (Step("during", Toxic("kafka", "bandwidth", attributes={"rate": 64}), at=5.0, duration=2.0),),
    expect=Expect(),
    during_s=7.0,
)
