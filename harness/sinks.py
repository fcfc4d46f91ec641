"""Reading what the exporter produced, directly (never through a proxy), from the beginning."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from harness.errors import HarnessError
from harness.redis_client import direct_client
from harness.stack import Stack
from harness.waiting import wait_for


class SinkRecord(NamedTuple):
    """A NamedTuple: a million of them stream through the reconciler."""

    record_id: int | None
    payload: str | None
    raw: bytes
    where: str
    ts: float | None = None  # when the sink took it (Kafka's message timestamp), epoch seconds
    stream: str = ""  # the ordered sequence it sits in (a partition, a file): order is judged per stream


@dataclass(frozen=True)
class DeadLetterRecord:
    record_id: str
    reason: str
    detail: str
    stage: str
    original: bytes


def _parse(raw: bytes, where: str, encoding: str = "utf-8", ts: float | None = None,
           stream: str = "") -> SinkRecord:
    try:
        data = json.loads(raw.decode(encoding))
        return SinkRecord(int(data["id"]), data.get("payload"), raw, where, ts, stream)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return SinkRecord(None, None, raw, where, ts, stream)  # unexpected shape: the reconciler reports it


def read_topic(stack: Stack, topic: str, timeout: float = 30.0,
               offsets: dict[int, int] | None = None) -> Iterator[SinkRecord]:
    """Every message of ``topic`` from offset 0 (or, per partition, from ``offsets``) to the high
    watermark at the time of the call; ``offsets`` is then moved to where the read ended."""
    offsets = {} if offsets is None else offsets
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap(proxied=False),
                         "group.id": f"faultline-reader-{uuid.uuid4().hex}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "enable.partition.eof": True,
                         # librdkafka prefetches up to 64 MB a partition by default: a reader of
                         # millions of records needs throughput, not a deep queue.
                         "queued.max.messages.kbytes": 8192, "fetch.max.bytes": 8 * 1024 * 1024,
                         "max.partition.fetch.bytes": 4 * 1024 * 1024})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        topic_meta = metadata.topics.get(topic)
        if topic_meta is None or topic_meta.error is not None:
            return  # the topic was never created: nothing was delivered
        partitions = [TopicPartition(topic, p, offsets.get(p, 0)) for p in topic_meta.partitions]
        ends = {tp.partition: _high_watermark(consumer, tp, timeout) for tp in partitions}
        todo = {p for p, high in ends.items() if high > offsets.get(p, 0)}
        if not todo:
            return
        consumer.assign(partitions)
        streams = {p: f"kafka:{topic}/{p}" for p in ends}
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise HarnessError(f"reading topic {topic}: partitions {sorted(todo)} not read to their end "
                                   f"within {timeout}s")
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(error)
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None  # set on every message that is not an error
                if offset < ends[partition]:
                    stream = streams[partition]
                    yield _parse(msg.value() or b"", f"{stream}@{offset}", ts=msg.timestamp()[1] / 1000,
                                 stream=stream)
                if offset + 1 >= ends[partition]:
                    todo.discard(partition)
        offsets.update(ends)
    finally:
        consumer.close()


# A topic the exporter has just created has no partition leader for a moment: asked then, the
# broker answers with one of these, and the answer a moment later is the real one.
_NOT_READY_YET = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                  KafkaError.UNKNOWN_TOPIC_OR_PART}


def _high_watermark(consumer: Consumer, tp: TopicPartition, timeout: float) -> int:
    last: list[KafkaException] = []

    def ask() -> int | None:
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=min(timeout, 5.0))[1]) + 1  # +1: 0 is an answer
        except KafkaException as exc:
            if not exc.args or exc.args[0].code() not in _NOT_READY_YET:
                raise HarnessError(f"reading topic {tp.topic}: partition {tp.partition}'s end offset: {exc}") from exc
            last[:] = [exc]
            return None

    return wait_for(ask, timeout=timeout, interval=0.1, what=f"topic {tp.topic} partition {tp.partition} to have "
                    "a leader", describe=lambda: str(last[0]) if last else "no answer") - 1


class SinkProgress:
    """The ids that reached a topic so far, read incrementally (each call reads only what is new),
    so that the runner can ask at every fault how many written records are still in flight."""

    def __init__(self, stack: Stack, topic: str) -> None:
        self.stack, self.topic = stack, topic
        self.ids: set[int] = set()
        self._offsets: dict[int, int] = {}

    def update(self) -> set[int]:
        self.ids.update(r.record_id for r in read_topic(self.stack, self.topic, offsets=self._offsets)
                        if r.record_id is not None)
        return self.ids


Entries = list[tuple[bytes, dict[bytes, bytes]]]  # XRANGE's reply: (entry id, fields) in order


def read_dead_letters(stack: Stack, stream: str) -> list[DeadLetterRecord]:
    client = direct_client(stack.redis_url(proxied=False), 10)
    try:
        letters = []
        start = "-"
        while True:
            batch = cast(Entries, client.xrange(stream, min=start, max="+", count=10_000))
            if not batch:
                break
            for _entry_id, f in batch:
                letters.append(DeadLetterRecord(f.get(b"record_id", b"").decode(), f.get(b"reason", b"").decode(),
                                                f.get(b"detail", b"").decode(errors="replace"),
                                                f.get(b"stage", b"").decode(), f.get(b"original", b"")))
            start = "(" + batch[-1][0].decode()  # exclusive: the next page starts after this entry
        return letters
    finally:
        client.close()


def read_lines(path: Path, encoding: str = "utf-8") -> list[SinkRecord]:
    if not path.exists():
        return []
    stream = f"file:{path}"
    return [_parse(line, f"{stream}:{n}", encoding, stream=stream)
            for n, line in enumerate(path.read_bytes().splitlines(), 1)
            if line]
