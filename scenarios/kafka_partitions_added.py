"""An operator adds partitions to the topic mid-run: the producer must pick up the new metadata
without losing or corrupting anything (order is only promised within a key's partition)."""

from harness.scenario import Expect, KafkaAddPartitions, Scenario, Step, Workload

SCENARIO = Scenario(
    name="kafka_partitions_added",
    description="The topic grows from 1 to 3 partitions mid-run: nothing lost, nothing corrupted",
    incident="send-errors-swallowed",
    workload=Workload(records=400, chunk=50, meet_faults=50),
    steps=(Step("during", KafkaAddPartitions(3), at=1.0, duration=3.0),),
    expect=Expect(),
    during_s=5.0,
)
