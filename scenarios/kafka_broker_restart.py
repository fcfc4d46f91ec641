"""The Kafka broker is killed (SIGKILL) during delivery and started again with its data."""

from harness.scenario import Expect, RestartService, Scenario, Step, Workload

SCENARIO = Scenario(
    name="kafka_broker_restart",
    description="Kafka broker SIGKILLed mid-delivery and restarted: sends fail and retry, nothing lost",
    workload=Workload(records=600, chunk=60),
    steps=(Step("during", RestartService("kafka", kill=True), at=0.5, duration=2.0),),
    expect=Expect(errors_surfaced=True),
    knobs={"delivery_timeout_ms": "3000"},
    during_s=4.0,
)
