"""The sink a scenario's records are judged in, whatever it is: a Kafka topic, a Redis stream
(Debezium Server's Redis sink) or a file. Everything that reads the sink (the reconciliation,
the flow before faults, in-flight figures, a pause's marks) asks ``primary_sink`` for a
``SinkReader``, so a target whose records land in a Redis stream is judged as fully as one
writing to Kafka. Every reader reads the server directly (never through a proxy), as its
administrator: a fault on the pipeline's links does not blind the judge."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import msgspec

from harness.errors import HarnessError
from harness.infra.redis_client import direct_client
from harness.infra.stack import Stack
from harness.judge.sinks import (
    _DECODE,
    _SKIP,
    SinkRecord,
    _parse,
    file_ends,
    message_decoder,
    read_lines,
    read_topic,
    topic_ends,
)
from harness.model.record_format import RecordFormat


class SinkReader(Protocol):
    """One sink, read from the start or incrementally (``records`` keeps its own cursor)."""

    @property
    def name(self) -> str: ...

    def records(self, *, incremental: bool = False) -> Iterator[SinkRecord]:
        """Every record from the beginning; ``incremental``: only those after the last call's
        (all of them again, with ``rewound`` set, when the sink forgot some since)."""
        ...

    @property
    def rewound(self) -> bool:
        """The last incremental read found the sink shorter than before (a file cut back by a
        crash, a Redis stream wiped) and read it from its start."""
        ...

    def ends(self) -> dict[str, int]:
        """How far each of its streams had got at this instant (``SinkRecord.stream`` keyed)."""
        ...


@dataclass
class KafkaTopicSink:
    stack: Stack
    topic: str
    fmt: RecordFormat | None = None
    _offsets: dict[int, int] = field(default_factory=dict)
    rewound: bool = False  # a topic's offsets only grow

    @property
    def name(self) -> str:
        return f"kafka:{self.topic}"

    def records(self, *, incremental: bool = False) -> Iterator[SinkRecord]:
        return read_topic(self.stack, self.topic, offsets=self._offsets if incremental else None, fmt=self.fmt)

    def ends(self) -> dict[str, int]:
        return topic_ends(self.stack, self.topic)


@dataclass
class FileSink:
    path: Path
    _lines: int = 0
    rewound: bool = False

    @property
    def name(self) -> str:
        return f"file:{self.path}"

    def records(self, *, incremental: bool = False) -> Iterator[SinkRecord]:
        lines = read_lines(self.path)
        if not incremental:
            return iter(lines)
        count = len(self.path.read_bytes().splitlines()) if self.path.exists() else 0  # as positions count
        self.rewound = count < self._lines
        start = 0 if self.rewound else self._lines
        self._lines = count
        return iter([r for r in lines if r.position > start])

    def ends(self) -> dict[str, int]:
        return file_ends(self.path)


Entries = list[tuple[bytes, dict[bytes, bytes]]]  # XRANGE's reply: (entry id, fields) in order
_PAGE = 5_000


@dataclass
class RedisStreamSink:
    """A Redis stream whose every entry carries one message in ``field`` (Debezium Server's
    ``extended`` format: ``key``, ``value`` and the record's headers). An entry's position is its
    index in the stream, its time the millisecond part of its id (when Redis took it)."""

    stack: Stack
    key: str
    field: str = "value"
    fmt: RecordFormat | None = None
    _after: str = "-"  # the cursor: the last entry id read, exclusive ("-": from the start)
    _count: int = 0
    rewound: bool = False

    @property
    def name(self) -> str:
        return f"redis:{self.key}"

    def records(self, *, incremental: bool = False) -> Iterator[SinkRecord]:
        start, index = (self._after, self._count) if incremental else ("-", 0)
        decode = message_decoder(self.fmt)
        client = direct_client(self.stack.redis_url(proxied=False), 10)
        try:
            if incremental:  # fewer entries than read so far: wiped (or trimmed), read again from the start
                self.rewound = int(client.xlen(self.key)) < self._count
                if self.rewound:
                    start, index = "-", 0
            while True:
                page = cast(Entries, client.xrange(self.key, min=start, max="+", count=_PAGE))
                for entry_id, fields in page:
                    record = self._record(entry_id, fields, index, decode)
                    index += 1
                    if record is not None:
                        yield record
                if len(page) < _PAGE:
                    break
                start = "(" + page[-1][0].decode()
            if page:
                start = "(" + page[-1][0].decode()
        finally:
            client.close()
        if incremental:
            self._after, self._count = start, index

    def _record(self, entry_id: bytes, fields: dict[bytes, bytes], index: int,
                decode: Callable[[bytes], SinkRecord]) -> SinkRecord | None:
        """The entry's record (None for a message that carries no row, as a tombstone)."""
        stream, ts = self.name, int(entry_id.split(b"-")[0]) / 1000
        raw = fields.get(self.field.encode())
        if raw is None:  # not an entry of the expected shape: reported, never passed over
            return SinkRecord(None, None, repr(fields).encode()[:2000], "", ts, stream, index)
        try:
            record = decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            record = SinkRecord()
        if record is _SKIP:
            return None
        if record.record_id is None:
            return _parse(raw, f"{stream}@{index}", ts=ts, stream=stream, position=index) if decode is _DECODE \
                else SinkRecord(None, None, raw, "", ts, stream, index)
        record.raw, record.ts, record.stream, record.position = raw, ts, stream, index
        return record

    def ends(self) -> dict[str, int]:
        client = direct_client(self.stack.redis_url(proxied=False), 10)
        try:
            length = int(client.xlen(self.key))
        finally:
            client.close()
        return {self.name: length} if length else {}


class SinkProgress:
    """The ids that reached the sink so far, read incrementally (each call reads only what is
    new), so that the runner can ask at every fault how many written records are still in flight."""

    def __init__(self, reader: SinkReader) -> None:
        self.reader = reader
        self.ids: set[int] = set()

    def update(self) -> set[int]:
        new = [r.record_id for r in self.reader.records(incremental=True) if r.record_id is not None]
        if self.reader.rewound:  # what the sink forgot has not reached it any more
            self.ids = set()
        self.ids.update(new)
        return self.ids


class Sinks(Protocol):
    """What names the run's sinks: the running exporter fills a role's template."""

    def sink(self, role: str) -> str: ...


def primary_sink(stack: Stack, sinks: Sinks, roles: dict[str, str], fmt: RecordFormat | None,
                 scenario_sink: str = "kafka") -> SinkReader:
    """The sink a scenario's records are judged in: the file sink when the scenario says so,
    else the target's message sink (``kafka_topic``, or ``redis_stream`` for a target without
    Kafka). ``roles``: the target's ``[sinks]`` table."""
    if scenario_sink == "file":
        return FileSink(Path(sinks.sink("file_sink")))
    if "kafka_topic" in roles:
        return KafkaTopicSink(stack, sinks.sink("kafka_topic"), fmt)
    if "redis_stream" in roles:
        return RedisStreamSink(stack, sinks.sink("redis_stream"), roles.get("redis_stream_field", "value"), fmt)
    raise HarnessError("the target names no message sink ([sinks] kafka_topic or redis_stream)")


MESSAGE_SINKS = ("kafka_topic", "redis_stream")  # a target names one: where its records are judged
