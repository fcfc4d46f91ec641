"""The Redis Streams buffer: append with checkpoint, consumer-group reads, ack, dead letters.

redis-py retries silently by default (three tries with backoff); here that is switched off
(exporter.redis_clients) so every failure reaches our own retry loop, which logs and
counts it. Delivered entries are XACKed and XDELed together, so XLEN is the real backlog.

Records travel in packs: one stream entry holds up to ``pack_size`` records, its ``ids`` field
the comma-separated record ids and its ``v`` field their JSON values joined by newlines (JSON
escapes every newline inside a value, so the split is exact). An entry is acknowledged only
when every record in it is settled; a partly settled entry is replaced, in one transaction, by
a new entry holding just the unsettled records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis

from exporter import defects
from exporter.config import Config
from exporter.errors import ExporterError, TransientError
from exporter.redis_clients import connect

TRANSIENT_REDIS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)
# Redis answers these while it refuses commands for a time: out of memory (OOM), persistence
# failing (MISCONF), too few replicas (NOREPLICAS), a replica (READONLY), an ACL that denies the
# user a command (NOPERM), a transaction discarded because of one of them (EXECABORT). The
# operator fixes them without restarting us: they are retried with backoff and counted, never a
# worker crash. redis-py strips the code of some into an exception class: both are read.
REFUSAL_CODES = ("OOM", "MISCONF", "NOREPLICAS", "READONLY", "NOPERM", "EXECABORT", "MASTERDOWN", "TRYAGAIN",
                 "CLUSTERDOWN", "BUSY ")
REFUSAL_CLASSES: dict[type[redis.ResponseError], str] = {
    redis.exceptions.OutOfMemoryError: "OOM", redis.exceptions.ReadOnlyError: "READONLY",
    redis.exceptions.NoPermissionError: "NOPERM", redis.exceptions.ExecAbortError: "EXECABORT",
    redis.exceptions.MasterDownError: "MASTERDOWN", redis.exceptions.TryAgainError: "TRYAGAIN"}


class RedisRefused(ExporterError):
    """Redis refused a command for a reason that passes (see ``REFUSAL_CODES``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code} {message}")


def refusal(exc: redis.ResponseError) -> RedisRefused | None:
    """The refusal ``exc`` is, with its code, or None for any other error reply."""
    for cls, code in REFUSAL_CLASSES.items():
        if isinstance(exc, cls):
            return RedisRefused(code, str(exc))
    text = str(exc)
    prefix = next((c for c in REFUSAL_CODES if text.startswith(c)), None)
    return RedisRefused(prefix.strip(), text[len(prefix):].strip()) if prefix else None


class Entry(NamedTuple):
    """One buffered record: the stream entry (pack) holding it, its record id as bytes, its value.

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


class CheckpointMoved(TransientError):
    """The buffer's checkpoint is not the one the reader appended after: nothing was written."""

    def __init__(self, expected: int, found: int | None) -> None:
        moved = f"it is {found}" if found is not None else "it changed while the append was prepared"
        super().__init__("buffer.append", f"the checkpoint moved: expected {expected}, {moved}")
        self.expected, self.found = expected, found


class BufferCorrupt(ExporterError, ValueError):
    """A stream entry whose ids and values do not pair up: never guessed at, always reported."""


class GroupLost(TransientError):
    """Redis restarted without persistence and lost the consumer group; it is recreated on retry."""


class Buffer:
    def __init__(self, config: Config, timeout_s: float | None = None) -> None:
        """``timeout_s``: a bound of its own on every command (a pause's status after its grace),
        shorter than the workers' ``redis_timeout_s``."""
        self.config = config
        timeout = min(timeout_s, config.redis_timeout_s) if timeout_s is not None else config.redis_timeout_s
        self._clients = connect(config, timeout)
        self.client = self._clients.client
        self._group_ready = False

    def close(self) -> None:
        self._clients.close()

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
            refused = refusal(exc)
            if refused is not None:
                raise TransientError(stage, refused) from exc
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

    def append(self, records: list[tuple[int, bytes]], dead: list[DeadLetter], last_id: int,
               expected: int | None = None) -> None:
        """Append records and dead letters and move the checkpoint, all in one MULTI/EXEC; with
        ``expected``, only if the checkpoint still is that (WATCH): after a failover to a replica
        that never got the last appends, the checkpoint there is older, and an append that wrote
        over it would hide that rows are missing from the buffer (found by redis_failover_behind:
        800 rows lost). CheckpointMoved then: the reader reads the checkpoint again."""
        with self._transient("buffer.append"):
            with self.client.pipeline(transaction=True) as pipe:
                if expected is not None:
                    pipe.watch(self.config.checkpoint_key)
                    raw = pipe.get(self.config.checkpoint_key)
                    found = int(raw) if raw is not None else 0
                    if found != expected:
                        raise CheckpointMoved(expected, found)
                    pipe.multi()
                self._queue_append(pipe, records, dead, last_id)
                try:
                    pipe.execute()
                except redis.WatchError as exc:
                    raise CheckpointMoved(expected or 0, None) from exc

    def _queue_append(self, pipe: Any, records: list[tuple[int, bytes]], dead: list[DeadLetter],
                      last_id: int) -> None:
        stream = self.config.stream
        size = self.config.pack_size
        for start in range(0, len(records), size):
            pack = records[start:start + size]
            # execute_command: xadd()'s argument handling costs more than the append itself.
            pipe.execute_command("XADD", stream, "*", "ids", b",".join(b"%d" % r for r, _v in pack),
                                 "v", b"\n".join(v for _r, v in pack))
        for letter in dead:
            pipe.xadd(self.config.dead_letter_stream, _dead_letter_fields(letter))
        if not defects.on("checkpoint_before_buffer"):
            pipe.set(self.config.checkpoint_key, last_id)

    def replicated(self, checkpoint: int, replicas: int, timeout_ms: int) -> bool | None:
        """Whether ``replicas`` replicas hold the buffer up to ``checkpoint`` (waiting up to
        ``timeout_ms``); None when the buffer's checkpoint is no longer that one (a failover to a
        replica that never got it: the reader reads on from what is there). WAIT counts what
        replicas acknowledged of the writes of the connection it runs on, and the append ran on
        another one: hence a probe written on this connection, after the checkpoint was read, which
        a replica acknowledging it holds the append before it (replication keeps the order)."""
        with self._transient("buffer.replicate"):
            with self.client.pipeline(transaction=False) as pipe:  # one connection for all three
                pipe.get(self.config.checkpoint_key)
                pipe.incr(self.config.replication_probe_key)
                pipe.execute_command("WAIT", replicas, timeout_ms)
                raw, _probe, acknowledged = pipe.execute()
        if (int(raw) if raw is not None else 0) != checkpoint:
            return None
        return int(acknowledged) >= replicas

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
        entries = _entries(cast(Any, reply)[0][1] if reply else [])
        return self._unsettled(entries) if pending else entries

    def autoclaim(self, count: int) -> list[Entry]:
        """Entries another (crashed) consumer left pending for longer than ``claim_idle_ms``."""
        self._group()
        with self._transient("buffer.autoclaim"):
            reply = self.client.xautoclaim(self.config.stream, self.config.group, self.config.consumer_name,
                                           min_idle_time=self.config.claim_idle_ms, start_id="0-0", count=count)
        return self._unsettled(_entries(reply[1]))

    def _settled_key(self, entry_id: bytes) -> str:
        return f"{self.config.stream}:settled:{entry_id.decode()}"

    def _unsettled(self, entries: list[Entry]) -> list[Entry]:
        """A pending pack settled in part keeps its place in the stream (see ``settle``): its
        records already settled are left out of the redelivery."""
        packs = sorted({e.entry_id for e in entries})
        if not packs:
            return entries
        with self._transient("buffer.read"):
            pipe = self.client.pipeline(transaction=False)
            for entry_id in packs:
                pipe.smembers(self._settled_key(entry_id))
            done = dict(zip(packs, pipe.execute(), strict=True))
        return [e for e in entries if e.key not in done[e.entry_id]]

    def settle(self, settled: list[Entry], letters: list[tuple[Entry | None, DeadLetter]],
               unsettled: list[Entry]) -> None:
        """Record the outcome of a delivery pass in one transaction.

        Dead letters are written; a pack whose records are all settled (delivered or
        dead-lettered) is acknowledged and deleted; a pack with some records settled and some
        not stays pending where it is, with its settled records noted beside it (so nothing is
        delivered twice, nothing is dropped, and its unsettled records are sent again before
        anything newer: a new pack of them at the stream's end would let later records of
        their keys overtake them); a pack with nothing settled stays pending for redelivery.
        """
        if not settled and not letters:
            return
        done: dict[bytes, list[bytes]] = {}
        for entry in [*settled, *(e for e, _l in letters if e is not None)]:
            done.setdefault(entry.entry_id, []).append(entry.key)
        partial = {entry.entry_id for entry in unsettled if entry.entry_id in done}
        whole = [entry_id for entry_id in done if entry_id not in partial]
        with self._transient("buffer.settle"):
            pipe = self.client.pipeline(transaction=True)
            stream = self.config.stream
            for _entry, letter in letters:
                pipe.xadd(self.config.dead_letter_stream, _dead_letter_fields(letter))
            for entry_id in partial:
                pipe.sadd(self._settled_key(entry_id), *done[entry_id])
            if whole:
                pipe.xack(stream, self.config.group, *whole)
                pipe.xdel(stream, *whole)
                pipe.delete(*(self._settled_key(entry_id) for entry_id in whole))
            pipe.execute()

    def dead_letter(self, letters: list[DeadLetter]) -> None:
        """Dead letters of records that never reached the buffer (export jobs)."""
        self.settle([], [(None, letter) for letter in letters], [])

    def pending_count(self) -> int:
        """Entries delivered to a consumer and not yet acknowledged. A read only: a status never
        makes the consumer group (a write, held while Redis holds writes); no group, none pending."""
        with self._transient("buffer.pending"):
            try:
                return int(self.client.xpending(self.config.stream, self.config.group)["pending"])
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    return 0
                raise

    def ping(self) -> bool:
        with self._transient("buffer.ping"):
            return bool(self.client.ping())


def _dead_letter_fields(letter: DeadLetter) -> dict[bytes | bytearray | memoryview | str | int | float,
                                                     bytes | bytearray | memoryview | str | int | float]:
    return {"record_id": str(letter.record_id), "reason": letter.reason, "detail": letter.detail,
            "stage": letter.stage, "original": letter.original, "ts": f"{time.time():.3f}"}


def _entries(raw: list) -> list[Entry]:
    entries = []
    for entry_id, fields in raw:
        if not fields:  # deleted while pending (acked elsewhere): nothing to deliver
            continue
        if b"ids" not in fields:  # one record per entry, as earlier versions wrote
            entries.append(Entry(entry_id, fields[b"id"], fields[b"v"]))
            continue
        ids, values = fields[b"ids"].split(b","), fields[b"v"].split(b"\n")
        if len(ids) != len(values):
            raise BufferCorrupt(f"buffer entry {entry_id!r} holds {len(ids)} ids but {len(values)} values")
        entries.extend(Entry(entry_id, key, value) for key, value in zip(ids, values, strict=True))
    return entries
