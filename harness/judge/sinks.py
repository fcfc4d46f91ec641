"""Reading what the exporter produced, directly (never through a proxy), from the beginning."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from harness.errors import HarnessError
from harness.infra.kafka_clients import kafka_config
from harness.infra.redis_client import direct_client
from harness.infra.stack import Stack
from harness.infra.waiting import wait_for
from harness.model.record_format import NotARecord, RecordFormat


class SinkRecord(msgspec.Struct, gc=False):
    """One message or line of a sink. A msgspec Struct: ten million of them stream through the
    reconciler, and one is made straight from the message's JSON (``id`` -> ``record_id``)."""

    record_id: int | None = msgspec.field(name="id", default=None)
    # The record's text (str), or its bytes where the target's [record] format carries them
    # base64-encoded; anything else in the JSON is kept as it is and compares as corrupted.
    payload: Any = None
    raw: bytes = b""
    where: str = ""  # "" when ``stream`` and ``position`` say it (the fast path leaves it to them)
    ts: float | None = None  # when the sink took it (Kafka's message timestamp), epoch seconds
    stream: str = ""  # the ordered sequence it sits in (a partition, a file): order is judged per stream
    position: int = -1  # its offset or line in the stream
    op: str = ""  # the operation letter of a change event (the target's [record] op), "" for a plain row
    before: Any = None  # a change event's before image's payload, where the target's [record] says
    tx: Any = None  # a change event's transaction mark, where the target's [record] says (bundled: "tx")

    @property
    def location(self) -> str:
        return self.where or f"{self.stream}@{self.position}"


_DECODE = msgspec.json.Decoder(SinkRecord).decode


@dataclass(frozen=True)
class DeadLetterRecord:
    record_id: str
    reason: str
    detail: str
    stage: str
    original: bytes


def _parse(raw: bytes, where: str, encoding: str = "utf-8", ts: float | None = None,
           stream: str = "", position: int = -1) -> SinkRecord:
    try:
        data = json.loads(raw.decode(encoding))
        payload, op, tx = data.get("payload"), data.get("op"), data.get("tx")
        return SinkRecord(int(data["id"]), payload if isinstance(payload, str) else None, raw, where, ts, stream,
                          position, op if isinstance(op, str) else "", tx=tx if isinstance(tx, int) else None)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return SinkRecord(None, None, raw, where, ts, stream, position)  # unexpected shape: the reconciler reports it


def read_topic(stack: Stack, topic: str, timeout: float = 30.0, offsets: dict[int, int] | None = None,
               fmt: RecordFormat | None = None) -> Iterator[SinkRecord]:
    """Every message of ``topic`` from offset 0 (or, per partition, from ``offsets``) to the high
    watermark at the time of the call; ``offsets`` is then moved to where the read ended. ``fmt``:
    how a record sits in a message (the target's [record]; default the bundled exporter's)."""
    return itertools.chain.from_iterable(read_topic_batches(stack, topic, timeout, offsets, fmt))


def read_topic_batches(stack: Stack, topic: str, timeout: float = 30.0, offsets: dict[int, int] | None = None,
                       fmt: RecordFormat | None = None) -> Iterator[list[SinkRecord]]:
    """``read_topic`` a consumer batch at a time (up to 10,000 records), so that a caller can time
    the reading apart from what it does with the records."""
    offsets = {} if offsets is None else offsets
    consumer = Consumer({**kafka_config(stack.kafka_bootstrap(proxied=False)),
                         "group.id": f"faultline-reader-{uuid.uuid4().hex}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "enable.partition.eof": True,
                         # A recount of ten million records is bound by how fast librdkafka
                         # refills its queue: by default it backs off a whole second
                         # (fetch.queue.backoff.ms) whenever the queue is full, which held a reader
                         # to 230k records/s; 5 ms lifts it to 600k+/s. Fetches and queue stay
                         # small: sizes count compressed bytes, and lz4 packs records tenfold.
                         "queued.max.messages.kbytes": 8192, "fetch.max.bytes": 2 * 1024 * 1024,
                         "max.partition.fetch.bytes": 1024 * 1024, "fetch.wait.max.ms": 10,
                         "fetch.queue.backoff.ms": 5})
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
        decode = message_decoder(fmt)
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise HarnessError(f"reading topic {topic}: partitions {sorted(todo)} not read to their end "
                                   f"within {timeout}s")
            batch = _decoded(consumer.consume(num_messages=10_000, timeout=0.5), ends, streams, todo, decode)
            if batch:
                yield batch
        offsets.update(ends)
    finally:
        consumer.close()


_UNDECODED = SinkRecord()  # what a message that is not a record of the expected shape decodes to


def _decoded(messages: list, ends: dict[int, int], streams: dict[int, str], todo: set[int],
             decode: Callable[[bytes], SinkRecord] = _DECODE) -> list[SinkRecord]:
    """A consumer batch as records, up to each partition's end offset (``todo`` loses a partition
    read to its end). A record of the expected shape is made in one C call; anything else goes
    through ``_parse``, which keeps what it can and lets the reconciler report the rest. This loop
    runs ten million times in a recount: nothing in it is there without need."""
    batch: list[SinkRecord] = []
    append = batch.append
    for msg in messages:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(error)
        partition, offset = msg.partition(), msg.offset()
        end = ends[partition]
        if offset + 1 >= end:
            todo.discard(partition)
            if offset >= end:
                continue  # written after the read began
        raw = msg.value() or b""
        try:
            record = decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            record = _UNDECODED
        if record is _SKIP:
            continue
        if record.record_id is None:
            where = f"{streams[partition]}@{offset}"
            # The bundled shape's slow path reads what its fast path could not; a target's own
            # [record] format is never second-guessed with the bundled shape (a wrong id path
            # once read every record through a top-level "id" the format did not name).
            append(_parse(raw, where, ts=msg.timestamp()[1] / 1000, stream=streams[partition], position=offset)
                   if decode is _DECODE else
                   SinkRecord(None, None, raw, where, msg.timestamp()[1] / 1000, streams[partition], offset))
            continue
        record.raw, record.ts, record.position = raw, msg.timestamp()[1] / 1000, offset
        record.stream = streams[partition]
        append(record)
    return batch


_SKIP = SinkRecord()  # what a message that carries no row decodes to: not a record at all


def message_decoder(fmt: RecordFormat | None) -> Callable[[bytes], SinkRecord]:
    """How a message becomes a record: in one C call for the bundled shape, else through the
    target's ``[record]`` format (a message without a row is ``_SKIP``; one of another shape has
    no id, and ``_parse`` keeps it for the reconciler to report)."""
    if fmt is None or fmt.plain:
        return _DECODE

    def decode(raw: bytes) -> SinkRecord:
        fields = fmt.fields(raw)
        return _SKIP if isinstance(fields, NotARecord) else SinkRecord(fields.record_id, fields.payload, op=fields.op,
                                                                        before=fields.before, tx=fields.tx)

    return decode


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


def topic_ends(stack: Stack, topic: str, timeout: float = 10.0) -> dict[str, int]:
    """Each partition's end offset now, keyed by the stream name sink records carry (a topic not
    made yet has none): how far the sink had got at an instant, without reading a message."""
    consumer = Consumer({**kafka_config(stack.kafka_bootstrap(proxied=False)),
                         "group.id": f"faultline-ends-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        topic_meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if topic_meta is None or topic_meta.error is not None:
            return {}
        return {f"kafka:{topic}/{p}": _high_watermark(consumer, TopicPartition(topic, p), timeout)
                for p in topic_meta.partitions}
    finally:
        consumer.close()


def file_ends(path: Path) -> dict[str, int]:
    """A file sink's line count now (its records' positions count from 1)."""
    if not path.exists():
        return {}
    return {f"file:{path}": len(path.read_bytes().splitlines())}


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
    return [_parse(line, f"{stream}:{n}", encoding, stream=stream, position=n)
            for n, line in enumerate(path.read_bytes().splitlines(), 1)
            if line]
