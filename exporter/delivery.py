"""The deliverer: buffer -> sinks. An entry is acknowledged only once every sink confirmed it (or
it is dead-lettered for a reason); failed entries stay pending and are read again before anything
new; entries a crashed consumer left behind are claimed with XAUTOCLAIM."""

from __future__ import annotations

import logging
import time

from exporter import defects, metrics
from exporter.buffer import Buffer, DeadLetter, Entry
from exporter.changes import row_key
from exporter.config import Config
from exporter.control import Control, backoff, count_dead
from exporter.errors import TransientError
from exporter.retrying import retry_transient
from exporter.sinks import FileSink, KafkaSink, SendResult, letter_id

log = logging.getLogger("exporter.pipeline")  # one logger for the pipeline's workers


class Deliverer:
    name = "deliverer"

    def __init__(self, config: Config, control: Control) -> None:
        self.config, self.control = config, control
        self.buffer = Buffer(config)
        self.sinks: list[KafkaSink | FileSink] = []
        if config.sink in ("kafka", "both"):
            self.sinks.append(KafkaSink(config))
        if config.sink in ("file", "both"):
            self.sinks.append(FileSink(config))
        self.attempts: dict[bytes, int] = {}
        self._last_claim = 0.0

    def run(self) -> None:
        failures = 0
        while not self.control.stop.is_set():
            self.control.deliverer_idle.clear()  # lowered before the pause flag is read (see Reader._paused)
            if self.control.pause_requested.is_set():
                self.control.deliverer_idle.set()
                self.control.wait(0.05)
                continue
            try:
                entries = self.next_batch()
                if not entries:
                    self.control.deliverer_idle.set()
                    continue
                if self.deliver(entries):
                    failures = 0
                else:
                    failures += 1
                    self.control.wait(backoff(failures, self.config.retry_max_backoff_s))
            except TransientError as exc:
                failures += 1
                metrics.retries.labels(stage=exc.stage).inc()
                log.error("delivery pass failed; retrying", extra={"stage": exc.stage, "attempt": failures,
                                                                   "error_class": exc.cause.__class__.__name__,
                                                                   "cause": str(exc.cause)})
                self.control.wait(backoff(failures, self.config.retry_max_backoff_s))
        self.control.deliverer_idle.set()
        for sink in self.sinks:
            sink.close()

    def next_batch(self) -> list[Entry]:
        """Redeliveries first (own pending), then orphans of crashed consumers, then new entries."""
        packs = max(1, self.config.batch_size // self.config.pack_size)  # stream entries per batch
        if defects.on("new_before_redeliveries"):
            entries = self.buffer.read(packs, 1, pending=False)  # block 0 would wait for ever
            if entries:
                return entries
        # Own pending entries first: they were read before anything new, and records of one key
        # must reach the sink in source order.
        entries = self.buffer.read(packs, 0, pending=True)
        if entries:
            return entries
        if time.monotonic() - self._last_claim > self.config.claim_idle_ms / 2000:
            self._last_claim = time.monotonic()
            entries = self.buffer.autoclaim(packs)
            if entries:
                log.warning("claimed entries left pending by another consumer", extra={"count": len(entries)})
                return entries
        metrics.buffer_length.set(self.buffer.length())
        return self.buffer.read(packs, int(self.config.poll_interval_s * 1000), pending=False)

    def deliver(self, entries: list[Entry]) -> bool:
        """Send to every sink; settle what all confirmed or what is hopeless. True if all settled."""
        deadline = self.control.deadline() or (time.monotonic() + self.config.kafka_message_timeout_ms / 1000 + 5)
        # A record is identified by (pack, record id): a redelivered record may sit in two packs.
        confirmed = {(e.entry_id, e.key) for e in entries}
        dead: dict[tuple[bytes, bytes], tuple[Entry, DeadLetter]] = {}
        for sink in self.sinks:
            todo = [e for e in entries if (e.entry_id, e.key) in confirmed and (e.entry_id, e.key) not in dead]
            result: SendResult = sink.send(todo, deadline)
            ok = {(e.entry_id, e.key) for e in result.delivered}
            for entry, reason in result.failed:
                attempt = self.attempts.get(entry.key, 0) + 1
                self.attempts[entry.key] = attempt
                if defects.on("dead_letter_after_retries") and attempt >= 2:
                    # The bug: a DLQ policy that gives up on a record the sink would take once healed.
                    dead[(entry.entry_id, entry.key)] = (entry, DeadLetter(
                        letter_id(entry, self.config.changes), "retries_exhausted", reason, entry.value,
                        f"sink.{sink.name}"))
                    continue
                log.error("send failed; left in the buffer for redelivery", extra={
                    "record_id": entry.record_id, "stage": f"sink.{sink.name}", "attempt": attempt,
                    "error_class": reason.split(":", 1)[0], "cause": reason})
            if result.failed:
                metrics.send_failures.labels(sink=sink.name).inc(len(result.failed))
            for entry, letter in result.dead:
                dead[(entry.entry_id, entry.key)] = (entry, letter)
            confirmed &= ok
        delivered = [e for e in entries if (e.entry_id, e.key) in confirmed]
        unsettled = [e for e in entries if (e.entry_id, e.key) not in confirmed and (e.entry_id, e.key) not in dead]
        if self.config.changes and unsettled:
            delivered, unsettled = newest_version_last(entries, delivered, unsettled)
        for sink in self.sinks:
            metrics.records_delivered.labels(sink=sink.name).inc(len(delivered))
        retry_transient(lambda: self.buffer.settle(delivered, list(dead.values()), unsettled), stage="buffer.settle",
                        stop_event=self.control.stop, max_backoff_s=self.config.retry_max_backoff_s,
                        deadline=self.control.deadline)
        for _entry, letter in dead.values():
            count_dead(letter)
        for entry in delivered + [entry for entry, _letter in dead.values()]:
            self.attempts.pop(entry.key, None)  # settled: no longer a retry to count
        return not unsettled


def newest_version_last(entries: list[Entry], delivered: list[Entry],
                        unsettled: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """In change mode: a row's version that goes again (its send failed) must not land after a
    later version of the row that was delivered: the later ones go again after it, so the row's
    last message in the topic is its newest. A send that timed out may still have been written
    (the broker took it as its leader died): sent again after the row's delete, which had been
    delivered, it resurrected the row (found by explore, a Kafka leader lost with 1.5 s sends)."""
    order = {(e.entry_id, e.key): n for n, e in enumerate(entries)}
    first_failed: dict[bytes, int] = {}
    for entry in unsettled:
        row = row_key(entry.value)
        first_failed[row] = min(first_failed.get(row, len(entries)), order[(entry.entry_id, entry.key)])
    again = [e for e in delivered if order[(e.entry_id, e.key)] > first_failed.get(row_key(e.value), len(entries))]
    if not again:
        return delivered, unsettled
    log.warning("later versions of rows whose earlier version failed are sent again after it", extra={
        "stage": "sink", "count": len(again), "record_id": again[0].record_id})
    going = {(e.entry_id, e.key) for e in again} | {(e.entry_id, e.key) for e in unsettled}
    return ([e for e in delivered if (e.entry_id, e.key) not in going],
            [e for e in entries if (e.entry_id, e.key) in going])
