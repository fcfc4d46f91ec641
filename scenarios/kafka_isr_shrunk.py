"""The in-sync replicas of the Kafka partition shrink to the leader alone: broker 2's followers
are cut off it for 8 s while records flow (the brokers drop a follower from the ISR after 5 s
without fetching), so with min.insync.replicas=2 every acks=all write is refused with
NOT_ENOUGH_REPLICAS until they are back. Sends time out after 2 s (the knob), so the exporter
sees failed deliveries over and over: it must keep the records and send them again once the ISR
has grown back, neither drop nor dead-letter them (no reason for a dead letter is true here)."""

from harness.scenario import Expect, KafkaIsrShrunk, Scenario, Step, Workload

SCENARIO = Scenario(
    name="kafka_isr_shrunk",
    description="The Kafka partition's ISR shrinks to its leader for 8 s under min.insync.replicas=2: writes "
                "refused, then delivered",
    workload=Workload(records=3000, chunk=100, meet_faults=100),
    steps=(
        Step("during", KafkaIsrShrunk(min_insync=2), at=0.5, duration=8.0),
    ),
    knobs={"delivery_timeout_ms": "2000"},
    expect=Expect(),
    during_s=10.0,
)
