"""The broker throttles the exporter's client id (a client quota of 20 kB/s) for 5s: sends slow
down and some may time out; every one must be retried, none taken as delivered or lost."""

from harness.scenario import Expect, KafkaQuota, Scenario, Step, Workload

SCENARIO = Scenario(
    name="kafka_client_throttled",
    description="Kafka quota of 20 kB/s on the exporter's client id for 5s: slower, nothing lost",
    incident="timeouts-too-tight",
    workload=Workload(records=600, chunk=60, meet_faults=100),
    steps=(Step("during", KafkaQuota(producer_byte_rate=20_000), at=0.5, duration=5.0),),
    expect=Expect(),
    knobs={"delivery_timeout_ms": "3000"},
    during_s=6.0,
)
