"""The in-sync replicas of the Kafka partition shrink to the leader alone: broker 2's followers
are cut off it for 12 s while records flow (the brokers drop a follower from the ISR after 5 s
without fetching, so for the last 5 to 7 s the ISR is the leader alone), and with
min.insync.replicas=2 every acks=all write is then refused with NOT_ENOUGH_REPLICAS until they
are back. Sends time out after 2 s (the knob), so the exporter sees failed deliveries over and
over: it must keep the records and send them again once the ISR has grown back, neither drop
nor dead-letter them (no reason for a dead letter is true here: a producer that retries nothing
and takes the broker's answer for a refusal dead-letters records the broker then holds)."""

from harness.scenario import Expect, KafkaIsrShrunk, Scenario, Step, Workload

SCENARIO = Scenario(
    name="kafka_isr_shrunk",
    description="The Kafka partition's ISR shrinks to its leader under min.insync.replicas=2: writes refused, "
                "then delivered",
    workload=Workload(records=3000, chunk=100, meet_faults=100),
    steps=(
        Step("during", KafkaIsrShrunk(min_insync=2), at=0.5, duration=12.0),
    ),
    knobs={"delivery_timeout_ms": "2000"},
    expect=Expect(),
    catches=("broker_errors_dead_lettered",),
    during_s=13.0,
)
