"""The broker is replaced: stopped for 3s, back on new ports with the proxy following it (the
address the exporter was given still works, the broker behind it is a new process). Records
in flight when it went away must be delivered when it is back."""

from harness.scenario import Expect, Scenario, ServiceMoves, Step, Workload

SCENARIO = Scenario(
    name="kafka_broker_moved",
    description="Kafka stopped for 3s and back on a new port behind its proxy: nothing lost",
    incident="send-errors-swallowed",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", ServiceMoves("kafka"), at=0.5, duration=3.0),),
    expect=Expect(),
    during_s=5.0,
)
