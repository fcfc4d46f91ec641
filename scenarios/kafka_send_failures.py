"""send-errors-swallowed: the Kafka link fails under the sender; every failure must surface.

Reproduces the KServe logger incident: rejected sends must be retried or dead-lettered,
counted and logged at error level, never taken as delivered.
"""

from harness.scenario import Expect, LinkDown, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="kafka_send_failures",
    description="Kafka link down, then connections reset, during delivery: failures surface, nothing lost",
    incident="send-errors-swallowed",
    workload=Workload(records=600, profile="ascii", chunk=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.5, duration=4.0),
        Step("during", Toxic("kafka", "reset_peer", attributes={"timeout": 0}), at=5.0, duration=2.0),
    ),
    expect=Expect(errors_surfaced=True),
    catches=("ignore_send_errors", "ack_before_send", "new_before_redeliveries", "dead_letter_after_retries"),
    # Short delivery timeout: failed sends come back inside the fault window.
    knobs={"delivery_timeout_ms": "1500"},
    during_s=8.0,
)
