"""Two things wrong at once: the Kafka link down while Redis is slow, and Redis refusing writes
in the middle of both. Faults on different links and services overlap; nothing is lost."""

from harness.scenario import Expect, LinkDown, RedisRefuseWrites, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="overlapping_faults",
    description="Kafka down 1-5s, Redis +150ms 2-6s, Redis OOM 3-4s, all overlapping: nothing lost",
    incident="send-errors-swallowed",
    workload=Workload(records=500, chunk=50, meet_faults=30),
    steps=(
        Step("during", LinkDown("kafka"), at=1.0, duration=4.0),
        Step("during", Toxic("redis", "latency", attributes={"latency": 150}), at=2.0, duration=4.0),
        Step("during", RedisRefuseWrites("oom"), at=3.0, duration=1.0),
    ),
    expect=Expect(errors_surfaced=True),
    knobs={"delivery_timeout_ms": "1500"},
    during_s=7.0,
)
