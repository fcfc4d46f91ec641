"""The exporter's packed buffer on a real Redis: packs split exactly, and settling a pack in part
keeps every unsettled record (no loss), in its place ahead of newer records (a key's order),
without keeping a settled one (no duplicate)."""

from __future__ import annotations

import uuid

import pytest
import redis

from exporter.buffer import Buffer, BufferCorrupt, CheckpointMoved, DeadLetter
from exporter.config import Config
from exporter.encoding import record_bytes
from harness.infra.stack import Stack

pytestmark = pytest.mark.faultline


@pytest.fixture
def buffer(stack: Stack) -> Buffer:
    config = Config(redis_url=stack.redis_url(proxied=False), stream_prefix=f"packs-{uuid.uuid4().hex[:8]}",
                    pack_size=100, consumer_name="test-consumer")
    buf = Buffer(config)
    buf.ensure_group()
    yield buf
    buf.client.delete(config.stream, config.dead_letter_stream, config.checkpoint_key)
    buf.close()


def values(n: int) -> list[tuple[int, bytes]]:
    # Newlines and line separators inside the text: JSON escapes them, so the pack split stays exact.
    return [(i, record_bytes(i, f"k{i}", f"line one\nline two\u2028{i}")) for i in range(1, n + 1)]


def test_records_travel_in_packs_and_come_back_exactly(buffer: Buffer) -> None:
    records = values(250)
    buffer.append(records, [], last_id=250)
    assert buffer.length() == 3  # 100 + 100 + 50
    entries = buffer.read(10, 0, pending=False)
    assert [(e.record_id, e.value) for e in entries] == records
    assert buffer.checkpoint() == 250


def test_partly_settled_pack_keeps_its_place_and_gives_only_its_unsettled_records(buffer: Buffer) -> None:
    buffer.append(values(250), [], last_id=250)
    entries = buffer.read(10, 0, pending=False)
    packs = sorted({e.entry_id for e in entries})
    first = [e for e in entries if e.entry_id == packs[0]]
    second = [e for e in entries if e.entry_id == packs[1]]
    third = [e for e in entries if e.entry_id == packs[2]]
    letter = DeadLetter(second[0].record_id, "too_large", "test", second[0].value, "sink.kafka")
    delivered = first + second[1:40]
    unsettled = second[40:] + third
    buffer.settle(delivered, [(second[0], letter)], unsettled)
    newer = values(260)[250:]
    buffer.append(newer, [], last_id=260)  # written after the pass: must not overtake what is left

    # The first pack is gone; the second stays where it was, pending, giving only what is left.
    remaining = [entry_id for entry_id, _f in buffer.client.xrange(buffer.config.stream)]
    assert remaining[:2] == packs[1:] and len(remaining) == 3
    pending = buffer.read(10, 0, pending=True)
    assert [e.record_id for e in pending] == [e.record_id for e in second[40:] + third]
    fresh = buffer.read(10, 0, pending=False)
    assert [e.record_id for e in fresh] == [i for i, _v in newer]  # only after the redelivery
    dead = buffer.client.xrange(buffer.config.dead_letter_stream)
    assert [fields[b"record_id"] for _id, fields in dead] == [str(second[0].record_id).encode()]
    buffer.settle(pending, [], [])  # the rest of the second pack settled: it goes, with its note
    assert [entry_id for entry_id, _f in buffer.client.xrange(buffer.config.stream)] == remaining[2:]
    assert not buffer.client.exists(f"{buffer.config.stream}:settled:{packs[1].decode()}")


def test_nothing_settled_leaves_the_pack_pending(buffer: Buffer) -> None:
    buffer.append(values(10), [], last_id=10)
    entries = buffer.read(10, 0, pending=False)
    buffer.settle([], [], entries)
    assert [e.record_id for e in buffer.read(10, 0, pending=True)] == list(range(1, 11))


def test_a_pack_whose_ids_and_values_disagree_is_reported_not_guessed(buffer: Buffer) -> None:
    buffer.client.xadd(buffer.config.stream, {"ids": "1,2,3", "v": b"{}\n{}"})
    with pytest.raises(BufferCorrupt, match="3 ids but 2 values"):
        buffer.read(10, 0, pending=False)


def test_entries_of_one_record_as_earlier_versions_wrote_are_still_read(buffer: Buffer) -> None:
    buffer.client.xadd(buffer.config.stream, {"id": "7", "v": b'{"id":7}'})
    assert [(e.record_id, e.value) for e in buffer.read(10, 0, pending=False)] == [(7, b'{"id":7}')]


def test_redis_client_has_silent_retries_switched_off(buffer: Buffer) -> None:
    # redis-py retries a failed command three times by default, silently: ours must not.
    assert buffer.client.get_retry().get_retries() == 0
    assert isinstance(buffer.client, redis.Redis)


def test_an_append_over_a_checkpoint_that_went_back_is_refused_and_writes_nothing(buffer: Buffer) -> None:
    """A failover to a replica that never got the last appends: its checkpoint is older. An append
    that wrote over it would hide the gap (redis_failover_behind lost 800 rows so); it is refused."""
    buffer.append(values(10), [], last_id=10, expected=0)
    buffer.client.set(buffer.config.checkpoint_key, 4)  # what the promoted replica had
    with pytest.raises(CheckpointMoved, match="expected 10, it is 4"):
        buffer.append(values(20)[10:], [], last_id=20, expected=10)
    assert buffer.checkpoint() == 4 and buffer.length() == 1
    buffer.append(values(20)[4:], [], last_id=20, expected=4)  # read again from where it went back to
    assert buffer.checkpoint() == 20 and buffer.length() == 2
