"""send-errors-swallowed, one partition at a time: the broker answers some of a produce request's
partitions with an error while the others are written. Retriable codes (NOT_LEADER_OR_FOLLOWER,
NOT_ENOUGH_REPLICAS) must be retried; codes the client reports (an ACL missing for a moment) must
leave the record in the buffer, not count it delivered because its neighbours were; an answer
lost after the broker wrote the batch must not lose or corrupt anything; and an out-of-order
sequence, fatal to an idempotent producer, must be survived by starting a new one."""

from harness.scenario import (
    Expect,
    KafkaProduceError,
    KafkaRequestFault,
    Scenario,
    Step,
    Workload,
)

SCENARIO = Scenario(
    name="kafka_produce_errors",
    description="Six partitions; partition 0 answered TOPIC_AUTHORIZATION_FAILED for 2.5 s, then "
                "NOT_LEADER_OR_FOLLOWER, any NOT_ENOUGH_REPLICAS, one produce answer lost, one out-of-order sequence "
                "(fatal for the producer): nothing lost, nothing dead-lettered",
    incident="send-errors-swallowed",
    workload=Workload(records=2000, chunk=150, keys=64, meet_faults=100),
    steps=(
        Step("during", KafkaProduceError(error="TOPIC_AUTHORIZATION_FAILED", partition=0, times=0, partitions=6),
             at=0.3, duration=2.5),
        Step("during", KafkaProduceError(error="NOT_LEADER_OR_FOLLOWER", partition=0, times=3, partitions=6), at=3.0,
             duration=1.5),
        Step("during", KafkaProduceError(error="NOT_ENOUGH_REPLICAS", times=2, partitions=6), at=4.7, duration=1.3),
        Step("during", KafkaRequestFault(api="produce", answer="cut", nth=2), at=6.2, duration=1.3),
        # An idempotent producer told its sequence is out of order is in a fatal state: librdkafka
        # will not send again, and the exporter must start a new producer and send what was lost.
        Step("during", KafkaProduceError(error="OUT_OF_ORDER_SEQUENCE_NUMBER", partitions=6), at=6.2, duration=1.3),
    ),
    expect=Expect(),
    catches=("partial_batch_success_acks_all",),
    during_s=8.0,
)
