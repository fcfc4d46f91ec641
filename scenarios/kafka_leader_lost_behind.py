"""The Kafka partition leader dies with writes its followers never fetched: the run's topic has
three replicas led by broker 2 (min.insync.replicas=2), broker 2's followers are cut off it for
2.5 s while records flow, then broker 2 is killed and a follower is elected. What the old leader
acknowledged alone is gone with it; a producer that waits for every in-sync replica (acks=all)
was never told those records were delivered and sends them again to the new leader. Duplicates
are allowed, loss is not (a leader-only acknowledgement, acks=1, loses them: the failover most
Kafka data-loss reports come down to)."""

from harness.scenario import Expect, KafkaLeaderLost, Scenario, Step, Workload

SCENARIO = Scenario(
    name="kafka_leader_lost_behind",
    description="The Kafka partition leader is cut off its followers for 2.5 s, then killed: a follower that never "
                "fetched its last writes leads",
    workload=Workload(records=3000, chunk=100, meet_faults=100),
    steps=(
        Step("during", KafkaLeaderLost(lag="cut"), at=0.5, duration=2.5),
    ),
    expect=Expect(),
    catches=("acks_leader_only",),
    during_s=4.0,
)
