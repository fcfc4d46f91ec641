"""The Kafka protocol proxy: between the exporter's clients and a broker, answering a produce
request's chosen partitions with an error code while the request's other partitions go to the
broker, and closing a connection on a chosen request (before it reaches the broker, or after,
with the answer lost).

Decoding and encoding are kio's (generated from Kafka's own message schemas, every version):
only what a rule needs is decoded (a produce request when a partition rule is in force), and
everything else passes as the broker's bytes. The broker advertises Toxiproxy's address and
Toxiproxy's upstream is this proxy, so every connection a client opens from a Metadata or
FindCoordinator answer comes back through here; no answer needs rewriting for that.

A partition answered with an error never reaches the broker: the request is re-encoded without
it, and the broker's answer for the rest gets the made-up partitions added, so a client sees one
answer with, say, partition 0 NOT_LEADER_OR_FOLLOWER and partition 1 written. A request whose
partitions are all answered is not sent at all. Answers keep the order of requests (Kafka answers
a connection's requests in order; librdkafka pipelines up to five).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import io
import struct
from dataclasses import dataclass, field, fields
from types import ModuleType
from typing import Any

from kio.index import KioIndexError, load_payload_module, load_request_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType
from kio.static.primitive import i32, i64

from harness.infra.proxies.base import Inbound, ProtocolProxy, ProtocolViolation, Rule, Trigger

PRODUCE = 0
FRAME_MAX = 100 * 1024 * 1024  # a frame claiming more is not Kafka (the broker's socket.request.max.bytes)
HEADER = struct.Struct(">hhi")  # api key, api version, correlation id
DISCONNECT = "disconnect"  # close the connection instead of sending the request on
CUT = "cut"  # send the request on, close the connection before its answer
DELAY = "delay"  # send the request on, hold its answer (and so the ones after it) for a while
DROP = "drop"  # send the request on, withhold its answer and every later one: a broker stuck on it


class KafkaWireError(ProtocolViolation):
    """Bytes that are not Kafka's protocol."""


@dataclass
class PartitionErrorRule(Rule):
    """A produce request's partition answered with ``error`` (a Kafka error name, upper case);
    ``topic`` "" and ``partition`` -1 match any."""

    error: str
    topic: str = ""
    partition: int = -1
    trigger: Trigger = field(default_factory=Trigger)

    def describe(self) -> str:
        where = f"{self.topic or 'any topic'}/{'any partition' if self.partition < 0 else self.partition}"
        return f"produce to {where} answered {self.error}"

    def matches(self, topic: str, partition: int) -> bool:
        return self.topic in ("", topic) and self.partition in (-1, partition)


@dataclass
class RequestRule(Rule):
    """A request of one API (kio's name: ``produce``, ``fetch``, ``metadata``...) whose connection
    is closed before it reaches the broker (DISCONNECT) or after (CUT: its answer lost), or whose
    answer is held ``delay_ms`` (DELAY) or never comes, nor any after it (DROP: the client's
    request timeout ends the connection)."""

    api: str
    answer: str
    trigger: Trigger = field(default_factory=Trigger)
    delay_ms: int = 0

    def describe(self) -> str:
        return f"{self.api} request: " + {
            DISCONNECT: "connection closed before it reaches the broker",
            CUT: "connection closed after the broker ran it",
            DELAY: f"answer held {self.delay_ms} ms",
            DROP: "answer withheld, and every later one on its connection"}[self.answer]


def error_code(name: str) -> ErrorCode:
    try:
        return ErrorCode[name.lower()]
    except KeyError:
        raise ValueError(f"{name!r} is not a Kafka error name") from None


def frame_end(buf: bytes | bytearray, pos: int = 0) -> int | None:
    if len(buf) - pos < 4:
        return None
    (size,) = struct.unpack_from(">i", buf, pos)
    if not 0 < size <= FRAME_MAX:
        raise KafkaWireError(f"a Kafka frame of {size} bytes")
    end = pos + 4 + size
    return end if end <= len(buf) else None


@functools.cache
def api_name(api_key: int) -> str:
    from kio.schema.index import api_key_map

    return str(api_key_map.get(api_key, f"api-{api_key}"))


@functools.cache
def _flexible(api_key: int, version: int) -> bool | None:
    try:
        return bool(load_request_schema(api_key, version).__flexible__)
    except KioIndexError:
        return None  # a version kio does not know: passed on untouched


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 28:
            raise KafkaWireError("a malformed varint in a request header")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def body_offset(frame: bytes, api_key: int, version: int) -> int | None:
    """Where a request's body starts, after its header (None: a version kio does not know)."""
    flexible = _flexible(api_key, version)
    if flexible is None:
        return None
    (length,) = struct.unpack_from(">h", frame, 12)
    pos = 14 + max(length, 0)  # client id
    return _after_tags(frame, pos) if flexible else pos


def _after_tags(frame: bytes, pos: int) -> int:
    count, pos = _uvarint(frame, pos)
    for _ in range(count):
        _tag, pos = _uvarint(frame, pos)
        size, pos = _uvarint(frame, pos)
        pos += size
    return pos


@dataclass
class _Faulted:
    """The partitions of one produce request answered by the proxy, and with what."""

    version: int
    partitions: list[tuple[str, int, ErrorCode]]
    order: list[tuple[str, int]] = field(default_factory=list)  # the request's, which an answer keeps


def _encode(entity: Any) -> bytes:
    with io.BytesIO() as out:
        entity_writer(type(entity))(out, entity)
        return out.getvalue()


def _schema(version: int) -> ModuleType:
    """The module of a produce answer's schema, with its nested entities."""
    return load_payload_module(PRODUCE, version, EntityType.response)


def _error_partition(module: ModuleType, index: int, code: ErrorCode) -> Any:
    cls = module.PartitionProduceResponse
    values = {"index": i32(index), "error_code": code, "base_offset": i64(-1), "log_append_time": None,
              "log_start_offset": i64(-1), "record_errors": (),
              "error_message": f"{code.name.upper()} (made up by faultline's proxy)"}
    return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def with_errors(module: ModuleType, response: Any, faulted: list[tuple[str, int, ErrorCode]],
                order: list[tuple[str, int]] | None = None) -> Any:
    """``response`` with the faulted partitions' answers added to their topics, in the order the
    request named them (a broker answers in that order, and a client reports in the answer's)."""
    topics = {t.name: list(t.partition_responses) for t in response.responses}
    for topic, index, code in faulted:
        topics.setdefault(topic, []).append(_error_partition(module, index, code))
    rank = {where: n for n, where in enumerate(order or [])}
    for name, parts in topics.items():
        parts.sort(key=functools.partial(_rank, rank, name))
    return dataclasses.replace(response, responses=tuple(
        module.TopicProduceResponse(name=name, partition_responses=tuple(parts)) for name, parts in topics.items()))


def _rank(rank: dict[tuple[str, int], int], topic: str, part: Any) -> int:
    return rank.get((topic, int(part.index)), len(rank))


class KafkaProxy(ProtocolProxy):
    protocol = "kafka"

    def _request_rule(self, api: str) -> tuple[int, RequestRule] | None:
        for number, rule in self.rules().items():
            if isinstance(rule, RequestRule) and rule.api == api and rule.trigger.fires():
                return number, rule
        return None

    def _split(self, connection: int, frame: bytes, version: int) -> tuple[bytes | None, _Faulted | None]:
        """A produce request without the partitions a rule answers: (what to send on, or None
        when nothing is left; the answered partitions, or None when no rule fired)."""
        rules = [(n, r) for n, r in self.rules().items() if isinstance(r, PartitionErrorRule)]
        start = body_offset(frame, PRODUCE, version)
        if not rules or start is None:
            return frame, None
        request_cls = load_request_schema(PRODUCE, version)
        request: Any = entity_reader(request_cls)(frame, start)[0]
        if request.acks == 0:
            return frame, None  # no answer is awaited: nothing to answer with an error
        faulted: list[tuple[str, int, ErrorCode]] = []
        kept_topics = []
        order = [(topic.name, int(part.index)) for topic in request.topic_data for part in topic.partition_data]
        for topic in request.topic_data:
            kept = []
            for part in topic.partition_data:
                hit = next(((n, r) for n, r in rules if r.matches(topic.name, part.index) and r.trigger.fires()), None)
                if hit is None:
                    kept.append(part)
                    continue
                faulted.append((topic.name, part.index, error_code(hit[1].error)))
                self.record(connection, f"produce v{version} {topic.name}/{part.index} "
                            f"({len(part.records or b'')} bytes; the request named {len(order)} partition(s))",
                            hit[1].error, hit[0])
            if kept:
                kept_topics.append(dataclasses.replace(topic, partition_data=tuple(kept)))
        if not faulted:
            return frame, None
        if not kept_topics:
            return None, _Faulted(version, faulted, order)
        body = _encode(dataclasses.replace(request, topic_data=tuple(kept_topics)))
        header = frame[4:start]
        return struct.pack(">i", len(header) + len(body)) + header + body, _Faulted(version, faulted, order)

    def _route(self, connection: int, frame: bytes) -> list[tuple[str, Any]]:
        """What to send the broker and what answers the client, in order, for one request."""
        if not self._rules:
            return [("send", frame), ("reply", None)]
        api_key, version, correlation = HEADER.unpack_from(frame, 4)
        hit = self._request_rule(api_name(api_key))
        if hit is not None:
            number, rule = hit
            self.record(connection, f"{api_name(api_key)} v{version} #{correlation}", rule.answer, number)
            if rule.answer == DISCONNECT:
                return [("close", None)]
            return [("send", frame), (rule.answer, rule.delay_ms)]
        if api_key != PRODUCE:
            return [("send", frame), ("reply", None)]
        send, faulted = self._split(connection, frame, version)
        if faulted is None:
            return [("send", frame), ("reply", None)]
        if send is None:
            return [("inject", _made_up(correlation, faulted))]
        return [("send", send), ("merge", faulted)]

    async def relay(self, connection: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                    server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter) -> None:
        answers: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        answering = self.answering(self._answer(answers, client_writer, Inbound(server_reader)), client_writer)
        requests = Inbound(client_reader)

        def route_all() -> list[bytes]:
            sent = []
            while (end := frame_end(requests.buf, requests.pos)) is not None:
                for what, data in self._route(connection, requests.take(end)):
                    if what == "send":
                        sent.append(data)
                    else:
                        answers.put_nowait((what, data))
            return sent

        await self.pump(requests, route_all, server_writer, answering)

    async def _answer(self, answers: asyncio.Queue[tuple[str, Any]], client_writer: asyncio.StreamWriter,
                      replies: Inbound) -> None:
        """Answer the client in request order: the broker's answers, merged ones, made-up ones."""
        while True:
            what, data = await answers.get()
            if what == "close":
                return  # the relay closes both sides
            if what == "inject":
                client_writer.write(data)
            elif what == DROP:
                while True:  # nothing more on this connection: the client gives up on it
                    await replies.frame(frame_end)
            else:
                reply = await replies.frame(frame_end)
                if what == CUT:
                    return
                if what == DELAY:
                    await asyncio.sleep(data / 1000)  # the fault itself: a broker slow to answer
                client_writer.write(_merged(reply, data) if what == "merge" else reply)
            if answers.empty():
                await client_writer.drain()


def _response_header(correlation: int, flexible: bool) -> bytes:
    return struct.pack(">i", correlation) + (b"\x00" if flexible else b"")  # no tagged fields


def _made_up(correlation: int, faulted: _Faulted) -> bytes:
    """A whole produce answer for a request none of whose partitions reached the broker."""
    module = _schema(faulted.version)
    cls = module.ProduceResponse
    empty = cls(**{f.name: v for f in fields(cls) if (v := {"responses": (),
                                                            "throttle_time": datetime.timedelta(0)}.get(f.name))
                   is not None})
    body = _encode(with_errors(module, empty, faulted.partitions, faulted.order))
    header = _response_header(correlation, bool(cls.__flexible__))
    return struct.pack(">i", len(header) + len(body)) + header + body


def _merged(reply: bytes, faulted: _Faulted) -> bytes:
    """The broker's produce answer with the partitions the proxy answered added."""
    module = _schema(faulted.version)
    cls = module.ProduceResponse
    start = _after_tags(reply, 8) if cls.__flexible__ else 8
    response, _size = entity_reader(cls)(reply, start)
    body = _encode(with_errors(module, response, faulted.partitions, faulted.order))
    header = reply[4:start]
    return struct.pack(">i", len(header) + len(body)) + header + body
