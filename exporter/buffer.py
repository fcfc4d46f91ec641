"""The Redis Streams buffer: append with checkpoint, consumer-group reads, ack, dead letters.

redis-py retries silently by default (three tries with backoff); here that is switched off
(``Retry(NoBackoff(), 0)``) so every failure reaches our own retry loop, which logs and
counts it. Delivered entries are XACKed and XDELed together, so XLEN is the real backlog.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from exporter import defects
from exporter.config import Config
from exporter.errors import TransientError

TRANSIENT_REDIS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)


class Entry(NamedTuple):
    """One buffered record: stream entry id, source record id (as the stream holds it), value.

    A NamedTuple, not a frozen dataclass: thousands are built per batch on the hot path.
    """

    entry_id: bytes
    key: bytes
    value: bytes

    @property
    def record_id(self) -> int:
        return int(self.key)


@dataclass(frozen=True)
class DeadLetter:
    record_id: int | str
    reason: str
    detail: str
    original: bytes
    stage: str


class GroupLost(TransientError):
    """Redis restarted without persistence and lost the consumer group; it is recreated on retry."""


class Buffer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.client = redis.Redis.from_url(
            config.redis_url, socket_timeout=config.redis_timeout_s,
            socket_connect_timeout=config.redis_timeout_s, retry=Retry(NoBackoff(), 0),
            health_check_interval=0)
        self._group_ready = False

    def close(self) -> None:
        self.client.close()

    @contextmanager
    def _transient(self, stage: str) -> Iterator[None]:
        try:
            yield
        except TRANSIENT_REDIS as exc:
            raise TransientError(stage, exc) from exc
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
                raise GroupLost(stage, exc) from exc
            raise

    def ensure_group(self) -> None:
        with self._transient("buffer.create_group"):
            try:
                self.client.xgroup_create(self.config.stream, self.config.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._group_ready = True

    def _group(self) -> None:
        if not self._group_ready:
            self.ensure_group()

    # -- source side --------------------------------------------------------------------------
    def checkpoint(self) -> int:
        with self._transient("buffer.checkpoint"):
            raw = self.client.get(self.config.checkpoint_key)
        return int(raw) if raw is not None else 0

    def set_checkpoint(self, last_id: int) -> None:
        with self._transient("buffer.checkpoint"):
            self.client.set(self.config.checkpoint_key, last_id)

    def append(self, records: list[tuple[int, bytes]], dead: list[DeadLetter], last_id: int) -> None:
        """Append records and dead letters and move the checkpoint, all in one MULTI/EXEC."""
        with self._transient("buffer.append"):
            pipe = self.client.pipeline(transaction=True)
            stream = self.config.stream
            for record_id, value in records:
                # execute_command: xadd()'s argument handling costs more than the append itself.
                pipe.execute_command("XADD", stream, "*", "id", record_id, "v", value)
            for letter in dead:
                pipe.xadd(self.config.dead_letter_stream, _dead_letter_fields(letter))
            if not defects.on("checkpoint_before_buffer"):
                pipe.set(self.config.checkpoint_key, last_id)
            pipe.execute()

    def length(self) -> int:
        with self._transient("buffer.length"):
            return int(self.client.xlen(self.config.stream))

    # -- sink side ------------------------------------------------------------------------------
    def read(self, count: int, block_ms: int, *, pending: bool) -> list[Entry]:
        """Own pending entries (``pending=True``: redelivery after a failure) or new ones."""
        self._group()
        with self._transient("buffer.read"):
            reply = self.client.xreadgroup(self.config.group, self.config.consumer_name,
                                           {self.config.stream: "0" if pending else ">"},
                                           count=count, block=None if pending else block_ms)
        return _entries(reply[0][1] if reply else [])

    def autoclaim(self, count: int) -> list[Entry]:
        """Entries another (crashed) consumer left pending for longer than ``claim_idle_ms``."""
        self._group()
        with self._transient("buffer.autoclaim"):
            reply = self.client.xautoclaim(self.config.stream, self.config.group, self.config.consumer_name,
                                           min_idle_time=self.config.claim_idle_ms, start_id="0-0", count=count)
        return _entries(reply[1])

    def ack(self, entries: list[Entry]) -> None:
        if not entries:
            return
        ids = [e.entry_id for e in entries]
        with self._transient("buffer.ack"):
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(self.config.stream, self.config.group, *ids)
            pipe.xdel(self.config.stream, *ids)
            pipe.execute()

    def dead_letter(self, letters: list[tuple[Entry | None, DeadLetter]]) -> None:
        """Write dead letters and ack their buffer entries in one transaction: never one without the other."""
        if not letters:
            return
        with self._transient("buffer.dead_letter"):
            pipe = self.client.pipeline(transaction=True)
            for entry, letter in letters:
                pipe.xadd(self.config.dead_letter_stream, _dead_letter_fields(letter))
                if entry is not None:
                    pipe.xack(self.config.stream, self.config.group, entry.entry_id)
                    pipe.xdel(self.config.stream, entry.entry_id)
            pipe.execute()

    def pending_count(self) -> int:
        self._group()
        with self._transient("buffer.pending"):
            return int(self.client.xpending(self.config.stream, self.config.group)["pending"])

    def ping(self) -> bool:
        with self._transient("buffer.ping"):
            return bool(self.client.ping())


def _dead_letter_fields(letter: DeadLetter) -> dict[str, str | bytes | int]:
    return {"record_id": str(letter.record_id), "reason": letter.reason, "detail": letter.detail,
            "stage": letter.stage, "original": letter.original, "ts": f"{time.time():.3f}"}


def _entries(raw: list) -> list[Entry]:
    entries = []
    for entry_id, fields in raw:
        if not fields:  # deleted while pending (acked elsewhere): nothing to deliver
            continue
        entries.append(Entry(entry_id, fields[b"id"], fields[b"v"]))
    return entries
