"""The topic's max.message.bytes is lowered under the exporter: batches of small records are
refused as a whole (MESSAGE_TOO_LARGE) though each fits alone. Only records too large on their
own may be dead-lettered; every small one must be delivered (the batch retried record by record)."""

from harness.scenario import Expect, KafkaTopicSetting, Scenario, Step, Workload

SCENARIO = Scenario(
    name="kafka_topic_limit_lowered",
    description="max.message.bytes lowered to 2000 for 4s: small records delivered, only large ones dead-lettered",
    incident="send-errors-swallowed",
    workload=Workload(records=600, profile="size_mix", size=5000, chunk=60, meet_faults=60),
    steps=(Step("during", KafkaTopicSetting("max.message.bytes", "2000"), at=0.5, duration=4.0),),
    expect=Expect(dead_lettered_at_least=1),
    catches=("too_large_batch_dead_lettered",),
    during_s=6.0,
)
