"""The buffer's Redis fails over to a replica that fell behind (its replication link cut for two
seconds while records flow, and Kafka unreachable meanwhile so that the buffer holds what it
could not deliver): the entries and the checkpoint the replica never got are gone with the old
primary. The exporter must notice its checkpoint went back and read those rows again:
duplicates are allowed, loss is not (the failover a Redis Sentinel makes: replication is
asynchronous, so what the buffer held at the end is only as good as the source it came from)."""

from harness.scenario import Expect, LinkDown, RedisFailover, Scenario, Step, Workload

SCENARIO = Scenario(
    name="redis_failover_behind",
    description="Redis fails over to a replica 2 s behind while Kafka is cut and records flow: the lost buffer is "
                "read again",
    workload=Workload(records=3000, chunk=100, meet_faults=100),
    steps=(
        Step("during", LinkDown("kafka"), at=0.3, duration=2.7),
        Step("during", RedisFailover(lag="cut"), at=0.5, duration=2.0),
    ),
    expect=Expect(),
    catches=("checkpoint_rewind_ignored",),
    during_s=4.0,
)
