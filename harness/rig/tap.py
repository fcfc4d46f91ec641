"""Evidence of the buffer hop: which records were ever seen in the buffer, and which sit there now.

A tap reads the buffer stream directly with a blocking XREAD (no consumer group, so it takes
nothing from the exporter). Redis wakes blocked readers on every XADD, so entries are seen
even when the exporter acknowledges and deletes them milliseconds later.

An entry may carry one record or a pack of them: the target definition names the field that
holds the record ids and the separator between them (``buffer_ids_field``,
``buffer_ids_separator``; one id per entry in field ``id`` when not given).
"""

from __future__ import annotations

import threading
from typing import Any, cast

import redis

from harness.errors import HarnessError
from harness.infra.redis_client import direct_client
from harness.infra.stack import Stack
from harness.judge.reconcile import BufferEvidence

# XREAD's reply: per stream, its name and its entries (id, fields).
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None


class BufferTap:
    def __init__(self, stack: Stack, stream: str, group: str, *, ids_field: str = "id",
                 ids_separator: str = ",") -> None:
        self.stream = stream
        self.group = group
        self.ids_field = ids_field.encode()
        self.ids_separator = ids_separator.encode()
        self.client = direct_client(stack.redis_url(proxied=False), 5)
        self.seen: set[int] = set()
        # Each entry as it was appended: Redis's clock in its id (ms), and the record ids it holds.
        # What was appended while a pause was in force is read from these, however late the tap
        # got to them.
        self.appended: list[tuple[int, list[int]]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="buffer-tap", daemon=True)

    def start(self) -> BufferTap:
        self._thread.start()
        return self

    def _run(self) -> None:
        last: str | bytes = "0-0"
        while not self._stop.is_set():
            try:
                reply = cast(StreamReply, self.client.xread({self.stream: last}, count=10_000, block=200))
            except redis.RedisError as exc:
                # Redis itself is under a fault (restarted, killed): keep the error for the report
                # (a blind spot must not read as "never buffered") and look again shortly.
                self.error = exc
                self._stop.wait(0.2)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    ids = self.record_ids(fields)
                    self.seen.update(ids)
                    self.appended.append((int(entry_id.split(b"-", 1)[0]), ids))

    def record_ids(self, fields: dict[bytes, bytes]) -> list[int]:
        raw = fields.get(self.ids_field)
        return [int(part) for part in raw.split(self.ids_separator)] if raw else []

    def appended_between(self, after_wall: float, until_wall: float) -> list[int]:
        """The record ids appended after ``after_wall`` and up to ``until_wall`` (epoch seconds),
        by the time Redis gave each entry."""
        lo, hi = after_wall * 1000, until_wall * 1000
        return [i for ms, ids in list(self.appended) if lo < ms <= hi for i in ids]

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # a tap closed before it started has no thread to wait for
            self._thread.join(timeout=5)

    def evidence(self) -> BufferEvidence:
        """What is in the buffer now. A read refused (an ACL, a paused server) is a harness error,
        never "nothing there": an empty answer would let the judge stop waiting and call records lost."""
        present: dict[bytes, list[int]] = {}
        try:
            entries = cast(list[tuple[bytes, dict[bytes, bytes]]], self.client.xrange(self.stream, count=1_000_000))
        except redis.RedisError as exc:
            raise HarnessError(f"buffer tap: cannot read {self.stream}: {exc.__class__.__name__}: {exc}") from exc
        for entry_id, fields in entries:
            present[entry_id] = self.record_ids(fields)
        try:
            pending_ids = [p["message_id"] for p in cast(list[dict[str, Any]], self.client.xpending_range(
                self.stream, self.group, min="-", max="+", count=1_000_000))]
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise HarnessError(f"buffer tap: the pending entries of {self.stream} could not be read: "
                                   f"{exc.__class__.__name__}: {exc}") from exc
            pending_ids = []  # no group yet: nothing can be pending
        except redis.RedisError as exc:
            raise HarnessError(f"buffer tap: cannot read the pending entries of {self.stream}: {exc}") from exc
        return BufferEvidence(seen=frozenset(self.seen), present=frozenset(i for ids in present.values() for i in ids),
                              pending=frozenset(i for e in pending_ids for i in present.get(e, ())))

    def close(self) -> None:
        self.stop()
        self.client.close()
