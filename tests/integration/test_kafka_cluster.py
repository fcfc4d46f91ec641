"""The local backend's three-broker Kafka on real servers: brokers 2 and 3 join broker 1's
cluster behind proxies of their own; a leader cut off its followers and killed loses what it
acknowledged alone to an acks=1 producer and nothing to an acks=all one; a reset puts the peers
away so that the next scenario's topics land on broker 1 again. The controller quorum has three
voters while the peers run: broker 1 killed, brokers 2 and 3 elect a controller and take acks=all
writes. Slow: three JVMs, an election."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness.backends.kafka_peers import live_brokers
from harness.infra.stack import Stack
from harness.infra.waiting import wait_for

pytestmark = [pytest.mark.faultline, pytest.mark.slow, pytest.mark.timeout(300)]
RECORDS = 200


def _leader(admin: AdminClient, topic: str) -> int:
    """Who leads partition 0 (-1: no one yet; a topic just made may have no partition in the
    metadata a broker answers with: found under load, a KeyError out of the poll)."""
    found = admin.list_topics(topic, timeout=5).topics.get(topic)
    partition = found.partitions.get(0) if found is not None else None
    return partition.leader if partition is not None else -1


def _topic(bootstrap: str) -> str:
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, 1, replica_assignment=[[2, 3, 1]],
                                                config={"min.insync.replicas": "2"})]).values():
        future.result(timeout=15)
    wait_for(lambda: _leader(admin, name) == 2, timeout=30, what="broker 2 to lead")
    return name


def _acknowledged(bootstrap: str, topic: str, acks: str) -> int:
    """Records the producer was told were delivered, sent while broker 2's followers are cut."""
    delivered = [0]

    def report(err: object, _msg: object) -> None:
        delivered[0] += err is None

    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "message.timeout.ms": 4000,
                         "enable.idempotence": acks == "all", "log_level": 0})
    for i in range(RECORDS):
        producer.produce(topic, str(i).encode(), on_delivery=report)
    producer.flush(10)
    return delivered[0]


def _end_offset(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cluster-test", "log_level": 0})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


@pytest.mark.parametrize("acks", ["1", "all"])
def test_a_leader_killed_behind_its_followers_loses_only_leader_acknowledged_writes(fresh_stack: Stack,
                                                                                     acks: str) -> None:
    if fresh_stack.backend.name != "local":
        pytest.skip("only the local backend runs a Kafka cluster")
    backend, direct = fresh_stack.backend, fresh_stack.kafka_bootstrap(proxied=False)
    evidence = backend.start_replica("kafka")
    assert live_brokers(direct) == {1, 2, 3}, evidence
    topic = _topic(direct)
    backend.cut_broker_replication(2, True)
    acknowledged = _acknowledged(fresh_stack.kafka_bootstrap(proxied=True), topic, acks)
    backend.kill_broker(2)
    admin = AdminClient({"bootstrap.servers": direct})
    wait_for(lambda: _leader(admin, topic) in (1, 3), timeout=30, what="a new leader")
    kept = _end_offset(direct, topic)
    if acks == "1":
        assert acknowledged == RECORDS and kept < acknowledged  # told delivered, gone with broker 2
    else:
        assert acknowledged == 0 and kept == 0  # never told delivered: nothing acknowledged was lost
    backend.cut_broker_replication(2, False)
    backend.start_broker(2)
    fresh_stack.reset()
    assert live_brokers(direct) == {1}  # the peers put away: the next scenario's topics land on broker 1


def test_the_controller_quorum_survives_broker_1_and_shrinks_back_when_the_peers_are_put_away(
        fresh_stack: Stack) -> None:
    if fresh_stack.backend.name != "local":
        pytest.skip("only the local backend runs a Kafka cluster")
    backend, direct = fresh_stack.backend, fresh_stack.kafka_bootstrap(proxied=False)
    started = backend.start_replica("kafka")
    assert started["voters"] == [1, 2, 3]
    peers = backend.kafka_peers  # type: ignore[attr-defined]
    topic = _topic(direct)
    backend.kill_service("kafka")  # broker 1: the quorum's first voter, most likely its leader
    wait_for(lambda: peers.quorum_leader() in (2, 3), timeout=30, what="brokers 2 and 3 to elect a controller")
    peer_bootstrap = f"127.0.0.1:{peers.servers[2].advertised_port}"
    wait_for(lambda: _leader(AdminClient({"bootstrap.servers": peer_bootstrap}), topic) == 2, timeout=30,
             what="broker 2 to lead with broker 1 fenced")
    assert _acknowledged(peer_bootstrap, topic, "all") == RECORDS  # min.insync 2: brokers 2 and 3 suffice
    backend.start_service("kafka")
    wait_for(lambda: live_brokers(direct) == {1, 2, 3}, timeout=60, what="broker 1 back in the cluster")
    assert peers.voters() == {1, 2, 3}
    fresh_stack.reset()
    assert peers.voters() == {1} and live_brokers(direct) == {1}  # removed from the quorum, then stopped
