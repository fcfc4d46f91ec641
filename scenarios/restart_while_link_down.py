"""The exporter is killed and restarted while the Kafka link is down (an operator restarting it
"to fix" the outage): what it had read but not delivered must be delivered after, from the buffer."""

from harness.scenario import Expect, KillExporter, LinkDown, Scenario, Step, Workload

SCENARIO = Scenario(
    name="restart_while_link_down",
    description="Kafka down 0.5-5s; the exporter SIGKILLed at 2s and restarted at 3s: nothing lost",
    incident="send-errors-swallowed",
    workload=Workload(records=500, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.5, duration=4.5),
        Step("during", KillExporter(), at=2.0, duration=1.0),
    ),
    expect=Expect(),
    catches=("ack_before_send",),
    knobs={"delivery_timeout_ms": "1500"},
    during_s=6.0,
)
