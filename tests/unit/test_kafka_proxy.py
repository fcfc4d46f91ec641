"""The Kafka protocol proxy's parts without a broker, on messages built with kio: frames are
delimited and nonsense refused; a produce request loses exactly the partitions a rule answers
and keeps the rest byte for byte in meaning; the broker's answer gets the made-up partitions back
in the request's order; a request with nothing left is answered whole with its correlation id;
acks=0 is never answered; and a connection the proxy cut on bytes it could not read is recorded."""

from __future__ import annotations

import datetime
import io
import socket
import struct
import threading

import pytest
from kio.index import load_payload_module
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v2.header import RequestHeader
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType
from kio.static.primitive import i16, i32, i64

from harness.infra.proxies.base import Trigger
from harness.infra.proxies.kafka import (
    KafkaProxy,
    KafkaWireError,
    PartitionErrorRule,
    _made_up,
    _merged,
    body_offset,
    frame_end,
)
from harness.infra.waiting import wait_for

VERSION = 9  # flexible: tagged fields in the header, compact strings
REQUEST = load_payload_module(0, VERSION, EntityType.request)
RESPONSE = load_payload_module(0, VERSION, EntityType.response)


def _encode(entity: object) -> bytes:
    out = io.BytesIO()
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


def _produce(partitions: list[int], acks: int = -1, correlation: int = 7) -> bytes:
    request = REQUEST.ProduceRequest(acks=i16(acks), timeout=datetime.timedelta(seconds=30), topic_data=(
        REQUEST.TopicProduceData(name="t", partition_data=tuple(
            REQUEST.PartitionProduceData(index=i32(p), records=f"batch-{p}".encode()) for p in partitions)),))
    header = RequestHeader(request_api_key=i16(0), request_api_version=i16(VERSION), correlation_id=i32(correlation),
                           client_id="rdkafka")
    payload = _encode(header) + _encode(request)
    return struct.pack(">i", len(payload)) + payload


def _decode_request(frame: bytes) -> object:
    start = body_offset(frame, 0, VERSION)
    assert start is not None
    return entity_reader(REQUEST.ProduceRequest)(frame, start)[0]


def _broker_answer(partitions: list[int], correlation: int = 7) -> bytes:
    response = RESPONSE.ProduceResponse(responses=(RESPONSE.TopicProduceResponse(name="t", partition_responses=tuple(
        RESPONSE.PartitionProduceResponse(index=i32(p), error_code=ErrorCode.none, base_offset=i64(100 + p),
                                          log_append_time=None, record_errors=()) for p in partitions)),),
        throttle_time=datetime.timedelta(0))
    payload = struct.pack(">i", correlation) + b"\x00" + _encode(response)
    return struct.pack(">i", len(payload)) + payload


def _decode_answer(frame: bytes) -> tuple[int, list[tuple[int, str]]]:
    (correlation,) = struct.unpack_from(">i", frame, 4)
    response = entity_reader(RESPONSE.ProduceResponse)(frame, 9)[0]
    return correlation, [(int(p.index), p.error_code.name) for t in response.responses for p in t.partition_responses]


def test_frames_are_delimited_and_nonsense_is_refused() -> None:
    frame = _produce([0])
    assert frame_end(frame + b"\x00\x00") == len(frame)
    assert all(frame_end(frame[:cut]) is None for cut in range(len(frame)))
    with pytest.raises(KafkaWireError):
        frame_end(struct.pack(">i", -5))
    with pytest.raises(KafkaWireError):
        frame_end(struct.pack(">i", 2**31 - 1))


def test_a_rule_takes_its_partition_out_and_the_answer_puts_it_back_in_order() -> None:
    proxy = KafkaProxy(("127.0.0.1", 9))
    proxy.add_rule(PartitionErrorRule("NOT_LEADER_OR_FOLLOWER", topic="t", partition=0))
    sent, faulted = proxy._split(1, _produce([0, 1]), VERSION)
    assert sent is not None and faulted is not None
    kept = _decode_request(sent)
    assert [(t.name, [int(p.index) for p in t.partition_data]) for t in kept.topic_data] == [("t", [1])]
    assert kept.topic_data[0].partition_data[0].records == b"batch-1"
    assert _decode_answer(_merged(_broker_answer([1]), faulted)) == (
        7, [(0, "not_leader_or_follower"), (1, "none")])
    [made] = proxy.injections()
    assert made.answer == "NOT_LEADER_OR_FOLLOWER" and "t/0" in made.request and "named 2 partition" in made.request


def test_a_request_with_nothing_left_is_not_sent_and_answered_whole() -> None:
    proxy = KafkaProxy(("127.0.0.1", 9))
    proxy.add_rule(PartitionErrorRule("NOT_ENOUGH_REPLICAS", trigger=Trigger(times=0)))
    sent, faulted = proxy._split(1, _produce([0, 1], correlation=41), VERSION)
    assert sent is None and faulted is not None
    assert _decode_answer(_made_up(41, faulted)) == (41, [(0, "not_enough_replicas"), (1, "not_enough_replicas")])


def test_no_rule_and_acks_zero_leave_the_request_as_it_came() -> None:
    proxy = KafkaProxy(("127.0.0.1", 9))
    frame = _produce([0, 1])
    assert proxy._split(1, frame, VERSION) == (frame, None)
    proxy.add_rule(PartitionErrorRule("NOT_LEADER_OR_FOLLOWER", trigger=Trigger(times=0)))
    unanswered = _produce([0, 1], acks=0)
    assert proxy._split(1, unanswered, VERSION) == (unanswered, None)  # nobody waits for an answer
    assert proxy.injections() == []


@pytest.mark.timeout(30)
def test_a_connection_cut_on_bytes_that_are_not_kafka_is_recorded() -> None:
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(upstream.accept()[0]), daemon=True).start()
    proxy = KafkaProxy(upstream.getsockname()).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            client.sendall(struct.pack(">i", -5) + b"garbage")
            assert client.recv(10) == b""  # closed by the proxy
        wait_for(lambda: proxy.violations, timeout=5, what="the proxy to record the violation", interval=0.02)
        assert len(proxy.violations) == 1 and "a Kafka frame of -5 bytes" in proxy.violations[0]
    finally:
        proxy.close()
        upstream.close()
        for conn in accepted:
            conn.close()
