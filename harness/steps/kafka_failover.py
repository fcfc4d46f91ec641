"""A Kafka partition's leader lost, or its in-sync replicas shrunk, on a three-broker cluster.

When one of these steps prepares, the backend starts brokers 2 and 3 beside the stack's broker 1
(harness.backends.kafka_peers) and the run's topic is made with three replicas led by broker 2
(``[2, 3, 1]``), the ``min.insync.replicas`` the step names, and unclean leader election on or
off. Every link between brokers is a proxy: ``lag = "cut"`` cuts broker 2's followers off it
while clients still write to it, so what it acknowledges from then on exists on one broker only.

- ``kafka_leader_lost``: at the window's end broker 2 is killed outright; the controller elects a
  follower (one in the ISR, or with ``unclean`` any one, when the ISR held the leader alone); the
  old leader comes back, truncates its log to the new leader's and catches up. A producer that
  took a leader's own acknowledgement (``acks=1``) for delivery has lost what the followers never
  fetched; ``acks=all`` loses nothing: those writes were never acknowledged, and are sent again.
- ``kafka_isr_shrunk``: broker 2's followers cut for the window, long enough that the leader drops
  them from the ISR; with ``min.insync.replicas`` above one, ``acks=all`` writes are refused
  (NOT_ENOUGH_REPLICAS) until the window ends and the followers catch up: the exporter must hold
  its records, neither drop nor dead-letter them.

Evidence is read back from the cluster: who leads, the replicas and the ISR before and after,
the high watermark, and how long the election took.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.kafka_clients import kafka_config
from harness.infra.waiting import wait_for
from harness.model.capabilities import Need
from harness.steps.base import STRICT, StepKind, World
from harness.steps.kafka_faults import ADMIN_TIMEOUT_S, admin, topic_of
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

LEADER = 2  # the broker that leads the run's topic: a peer, never broker 1 (behind the link faults' kafka proxy)
ASSIGNMENT = [LEADER, 3, 1]
ELECTION_TIMEOUT_S = 30.0  # a fenced broker's partitions move within its session (6 s) and an election
CATCH_UP_TIMEOUT_S = 60.0
# A window this long outlasts the brokers' 5 s replica lag and their look every 2.5 s, and leaves
# seconds of refused writes (8 s caught the seeded defect 1 time of 2, 12 s every time).
SHRINK_WINDOW_S = 10.0


def partition_state(run: StepContext, client: AdminClient | None = None) -> dict[str, Any]:
    """Leader, replicas and ISR of the run's topic's partition 0, as the controller has them
    (``client``: one kept by a caller that asks every half second)."""
    try:
        metadata = (client or admin(run)).list_topics(topic_of(run), timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise HarnessError(f"kafka: cannot read who leads {topic_of(run)}: {exc}") from exc
    topic = metadata.topics.get(topic_of(run))
    if topic is None or topic.error is not None or 0 not in topic.partitions:
        raise HarnessError(f"kafka: topic {topic_of(run)} has no partition 0 ({topic.error if topic else 'absent'})")
    partition = topic.partitions[0]
    return {"leader": partition.leader, "replicas": list(partition.replicas), "isr": sorted(partition.isrs)}


def _led_by(run: StepContext, client: AdminClient, leader: int) -> dict[str, Any] | None:
    """The partition's state once ``leader`` leads it, or None: not yet, or the broker asked does not
    know the new topic yet (a quorum's metadata reaches each broker a moment after the create)."""
    try:
        state = partition_state(run, client)
    except HarnessError:
        return None
    return state if state["leader"] == leader else None


def high_watermark(run: StepContext) -> int | None:
    """The partition's high watermark (what its in-sync replicas all hold); None: no leader answers."""
    consumer = Consumer(kafka_config(run.stack.admin_url("kafka"), **{"group.id": "faultline-watermarks",
                                                                       "enable.auto.commit": False}))
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic_of(run), 0), timeout=5)[1])
    except KafkaException:
        return None
    finally:
        consumer.close()


def make_replicated_topic(run: StepContext, min_insync: int, unclean: bool) -> dict[str, Any]:
    """The run's topic with three replicas led by broker 2 (made before the exporter starts)."""
    client = admin(run)
    config = {"min.insync.replicas": str(min_insync), "unclean.leader.election.enable": str(unclean).lower()}
    if topic_of(run) not in client.list_topics(timeout=ADMIN_TIMEOUT_S).topics:
        futures = client.create_topics([NewTopic(topic_of(run), 1, replica_assignment=[ASSIGNMENT], config=config)])
        for future in futures.values():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as exc:
                raise HarnessError(f"kafka: cannot create {topic_of(run)} on three brokers: {exc}") from exc
    state = wait_for(lambda: _led_by(run, client, LEADER), timeout=ELECTION_TIMEOUT_S, interval=0.2,
                     what=f"broker {LEADER} to lead {topic_of(run)}")
    if state["replicas"] != ASSIGNMENT:
        raise HarnessError(f"kafka: {topic_of(run)} existed before the failover step made it: replicas "
                           f"{state['replicas']}, not {ASSIGNMENT} (a failover needs the step's own topic)")
    return state


class KafkaClusterStep(StepKind):
    """What both steps share: three brokers, the topic on all of them, one topology change at a time."""

    unclean: bool
    min_insync: int

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.replica("kafka"), Need.link("kafka")})

    def holds(self) -> frozenset[str]:
        # A link fault on kafka reaches broker 1's client proxy only while the peers run: it would
        # be named in the journal without cutting the leader, so explore keeps the two apart.
        return frozenset({"kafka-topology", "whether link kafka is up"})

    def prepare(self, run: StepContext) -> None:
        run.stack.backend.start_replica("kafka")
        make_replicated_topic(run, self.min_insync, self.unclean)

    def watch(self, run: StepContext) -> Callable[[], dict[str, float]]:
        client = admin(run)

        def leadership() -> dict[str, float]:
            state = partition_state(run, client)
            return {"kafka partition leader (broker id; -1: none)": state["leader"],
                    "kafka in-sync replicas": len(state["isr"])}
        return leadership

    def topic_settings(self) -> str:
        return f"min.insync.replicas={self.min_insync}, unclean election {'on' if self.unclean else 'off'}"


@step_kind
@dataclass(frozen=True, config=STRICT)
class KafkaLeaderLost(KafkaClusterStep):
    """The leader of the run's topic (broker 2) killed at the window's end; ``lag = "cut"`` cuts its
    followers off it for the window first. It comes back as a follower after the election."""

    kind_name: ClassVar[str] = "kafka_leader_lost"
    fails_over: ClassVar[str] = "kafka"
    deadline_s: ClassVar[float] = 150.0
    lag: Literal["cut", "none"] = "cut"
    unclean: bool = False
    min_insync: Annotated[int, Field(ge=1, le=3)] = 2

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KafkaLeaderLost:
        return cls(lag=rng.choice(("cut", "cut", "none")), unclean=rng.random() < 0.25, min_insync=2)

    def describe(self) -> str:
        behind = " cut off from its followers" if self.lag == "cut" else ""
        return f"kafka partition leader (broker {LEADER}){behind} killed ({self.topic_settings()})"

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        state = partition_state(run)
        if self.lag == "cut":
            run.stack.backend.cut_broker_replication(LEADER, True)
        record.evidence = (f"leader {state['leader']}, ISR {state['isr']}"
                           + ("; its followers' replication link cut" if self.lag == "cut" else ""))
        return state

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        backend = run.stack.backend
        watermark = high_watermark(run)
        backend.kill_broker(LEADER)
        killed = time.monotonic()
        elected = _await_new_leader(run)
        election_s = round(time.monotonic() - killed, 2)
        backend.cut_broker_replication(LEADER, False)
        backend.start_broker(LEADER)
        rejoined = _await_in_sync(run, LEADER)
        record.result = {"old_leader": LEADER, "new_leader": elected["leader"], "isr_at_election": elected["isr"],
                         "high_watermark_before": watermark, "high_watermark_after": high_watermark(run),
                         "election_s": election_s, "old_leader_back_in_sync": rejoined}
        record.evidence += (f"; broker {LEADER} killed (high watermark {watermark}); broker {elected['leader']} "
                            f"elected in {election_s} s with ISR {elected['isr']}; broker {LEADER} back"
                            + (" and in sync" if rejoined else ", not yet in sync"))


@step_kind
@dataclass(frozen=True, config=STRICT)
class KafkaIsrShrunk(KafkaClusterStep):
    """The followers of the run's topic's leader cut off it for the window: the ISR shrinks to the
    leader alone (a window under the brokers' 5 s replica lag does not shrink it) and, with
    ``min_insync`` above one, acks=all writes are refused until they are back in sync."""

    kind_name: ClassVar[str] = "kafka_isr_shrunk"
    deadline_s: ClassVar[float] = 90.0
    min_window_s: ClassVar[float] = SHRINK_WINDOW_S
    # A follower that fetches nothing stays in the ISR while it has everything the leader has: the
    # ISR shrinks only under writes (measured: 25 s cut, no write, ISR whole throughout).
    meets_writes_every_s: ClassVar[float] = 1.0
    unclean: bool = False
    min_insync: Annotated[int, Field(ge=1, le=3)] = 2

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KafkaIsrShrunk:
        """Drawn in windows of ``SHRINK_WINDOW_S`` at least (``min_window_s``): the brokers drop a
        follower from the ISR only after 5 s without a fetch (and look every 2.5 s), so a shorter
        window cuts the followers without ever shrinking the ISR."""
        return cls(min_insync=rng.choice((2, 2, 3)))

    def describe(self) -> str:
        return f"kafka followers cut off the partition leader, the ISR shrinking ({self.topic_settings()})"

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        run.stack.backend.cut_broker_replication(LEADER, True)
        record.evidence = f"followers of broker {LEADER} cut; ISR {partition_state(run)['isr']}"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        shrunk = partition_state(run)["isr"]
        run.stack.backend.cut_broker_replication(LEADER, False)
        full = _await_in_sync(run, *ASSIGNMENT)
        record.result = {"isr_at_end": shrunk, "isr_whole_again": full}
        record.evidence += (f"; ISR at the window's end {shrunk}"
                            + ("; all three in sync again" if full else "; not all back in sync yet"))


def _await_new_leader(run: StepContext) -> dict[str, Any]:
    """The partition's state once a broker other than the killed leader leads it; an offline
    partition (no eligible replica: unclean election off and the ISR was the leader alone) is
    evidence too, not an error: the leader's return then ends it."""
    seen: dict[str, Any] = {}
    client = admin(run)

    def elected() -> bool:
        seen.update(partition_state(run, client))
        return seen["leader"] not in (LEADER, -1)

    try:
        wait_for(elected, timeout=ELECTION_TIMEOUT_S, interval=0.2, what="a new leader of the partition")
    except TimeoutError:
        return {**seen, "leader": seen.get("leader", -1)}
    return seen


def _await_in_sync(run: StepContext, *brokers: int) -> bool:
    try:
        client = admin(run)
        wait_for(lambda: set(brokers) <= set(partition_state(run, client)["isr"]), timeout=CATCH_UP_TIMEOUT_S,
                 interval=0.25, what=f"brokers {list(brokers)} in the ISR")
    except TimeoutError:
        return False
    return True
