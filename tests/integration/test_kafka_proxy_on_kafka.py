"""The Kafka protocol proxy against a real broker, behind the stack's Toxiproxy link as a run puts
it: one partition of a produce request answered with an error while the other is written; a
transient error retried by the client and the record delivered once; a permanent one reported to
the delivery callback; a request cut after the broker ran it, the idempotent producer still
writing each record once; and the link given back at the end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness.infra.proxies.base import Trigger
from harness.infra.proxies.kafka import CUT, DELAY, DROP, KafkaProxy, PartitionErrorRule, RequestRule
from harness.infra.stack import Stack


@pytest.fixture
def proxy(fresh_stack: Stack) -> Iterator[KafkaProxy]:
    link = fresh_stack.proxy("kafka")
    original = link.upstream
    host, _, port = original.rpartition(":")
    started = KafkaProxy((host, int(port))).start()
    link.set_upstream(started.address)  # every connection a client opens comes back through it
    yield started
    link.set_upstream(original)
    started.close()


@pytest.fixture
def topic(fresh_stack: Stack) -> str:
    name = f"proxied-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": fresh_stack.kafka_bootstrap(proxied=False)})
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result(timeout=30)
    return name


def _produce(stack: Stack, topic: str, values: dict[int, list[bytes]],
             **config: object) -> dict[bytes, KafkaError | None]:
    reports: dict[bytes, KafkaError | None] = {}
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap(), "acks": "all", "enable.idempotence": True,
                         "linger.ms": 50, "message.timeout.ms": 20_000, **config})
    for partition, batch in values.items():
        for value in batch:
            producer.produce(topic, value, partition=partition,
                             on_delivery=lambda err, msg: reports.__setitem__(msg.value(), err))
    assert producer.flush(30) == 0
    return reports


def _read(stack: Stack, topic: str) -> dict[int, list[bytes]]:
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap(proxied=False), "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})
    seen: dict[int, list[bytes]] = {0: [], 1: []}
    try:
        for partition in (0, 1):
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
            if high == 0:
                continue
            consumer.assign([TopicPartition(topic, partition, 0)])
            while len(seen[partition]) < high:
                message = consumer.poll(5)
                assert message is not None, f"partition {partition}: {len(seen[partition])} of {high} read"
                if message.error() is None:
                    seen[partition].append(message.value())
    finally:
        consumer.close()
    return seen


@pytest.mark.timeout(120)
@pytest.mark.parametrize("code", ["NOT_LEADER_OR_FOLLOWER", "CORRUPT_MESSAGE"])
def test_a_transient_error_on_one_partition_is_retried_and_written_once(fresh_stack: Stack, proxy: KafkaProxy,
                                                                         topic: str, code: str) -> None:
    proxy.add_rule(PartitionErrorRule(code, topic=topic, partition=0, trigger=Trigger(times=2)))
    reports = _produce(fresh_stack, topic, {0: [b"a0", b"a1"], 1: [b"b0", b"b1"]})
    assert all(err is None for err in reports.values()), reports
    made = proxy.injections()
    assert len(made) == 2 and all(f"{topic}/0" in i.request and i.answer == code for i in made), made
    assert _read(fresh_stack, topic) == {0: [b"a0", b"a1"], 1: [b"b0", b"b1"]}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("code", "reported"), [("MESSAGE_TOO_LARGE", KafkaError.MSG_SIZE_TOO_LARGE),
                                                ("TOPIC_AUTHORIZATION_FAILED", KafkaError.TOPIC_AUTHORIZATION_FAILED)])
def test_an_error_the_client_does_not_retry_reaches_the_delivery_callback_and_nothing_is_written(
        fresh_stack: Stack, proxy: KafkaProxy, topic: str, code: str, reported: int) -> None:
    proxy.add_rule(PartitionErrorRule(code, topic=topic, partition=1, trigger=Trigger(times=0)))
    reports = _produce(fresh_stack, topic, {0: [b"a0"], 1: [b"b0"]})
    assert reports[b"a0"] is None
    refused = reports[b"b0"]
    assert refused is not None and refused.code() == reported, refused
    assert _read(fresh_stack, topic) == {0: [b"a0"], 1: []}


@pytest.mark.timeout(120)
def test_a_produce_cut_after_the_broker_wrote_it_is_not_duplicated_by_an_idempotent_producer(
        fresh_stack: Stack, proxy: KafkaProxy, topic: str) -> None:
    proxy.add_rule(RequestRule("produce", CUT))
    reports = _produce(fresh_stack, topic, {0: [b"a0", b"a1"]})
    assert all(err is None for err in reports.values()), reports
    assert [i.answer for i in proxy.injections()] == [CUT]
    assert _read(fresh_stack, topic)[0] == [b"a0", b"a1"]


@pytest.mark.timeout(120)
def test_a_delayed_answer_arrives_late_and_a_dropped_one_is_given_up_on_and_retried(
        fresh_stack: Stack, proxy: KafkaProxy, topic: str) -> None:
    _produce(fresh_stack, topic, {0: [b"warm-up"]})  # connections and producer id before the clock
    proxy.add_rule(RequestRule("produce", DELAY, delay_ms=1500))
    started = time.monotonic()
    assert _produce(fresh_stack, topic, {0: [b"late"]}) == {b"late": None}
    assert time.monotonic() - started >= 1.5  # the answer was held, not only recorded as held
    proxy.add_rule(RequestRule("produce", DROP))
    reports = _produce(fresh_stack, topic, {1: [b"dropped"]}, **{"socket.timeout.ms": 3000})
    assert reports == {b"dropped": None}  # retried on a new connection after the timeout
    assert [i.answer for i in proxy.injections()] == [DELAY, DROP]
    assert _read(fresh_stack, topic) == {0: [b"warm-up", b"late"], 1: [b"dropped"]}  # once: idempotence
