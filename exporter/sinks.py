"""Sinks: Kafka (confirmed by delivery reports) and files (confirmed by fsync).

A sink's ``send`` returns what it confirmed, what failed for now (left in the buffer for
redelivery) and what can never be delivered (dead-lettered). Nothing is left unaccounted.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from exporter import defects, metrics
from exporter.buffer import DeadLetter, Entry
from exporter.changes import row_key
from exporter.config import Config
from exporter.durability import STAGE as DURABILITY_STAGE
from exporter.durability import durability_problem
from exporter.encoding import encode_text
from exporter.errors import PermanentRecordError, TransientError
from exporter.files import append_durably

log = logging.getLogger("exporter.sink")


DURABILITY_TIMEOUT_S = 2.0  # a look at the topic's settings
FLUSH_SLICE_S = 0.5  # how long a flush waits before the sink looks at the producer's state again
PERMANENT_KAFKA = {KafkaError.MSG_SIZE_TOO_LARGE: "too_large", KafkaError.INVALID_RECORD: "rejected_by_broker"}


@dataclass
class SendResult:
    delivered: list[Entry] = field(default_factory=list)
    failed: list[tuple[Entry, str]] = field(default_factory=list)
    dead: list[tuple[Entry, DeadLetter]] = field(default_factory=list)


def letter_id(entry: Entry, changes: bool) -> int:
    """The id a dead letter is filed under: the record's, or for a change event the row it
    changed (its buffer entry is keyed by the change number, which no operator can look up)."""
    return int(row_key(entry.value)) if changes else entry.record_id


def _kafka_error(exc: BaseException) -> KafkaError | None:
    """The client's error an exception carries, itself or as its cause (None: not the client's)."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        if isinstance(candidate, KafkaException) and isinstance(candidate.args[0], KafkaError):
            return candidate.args[0]
    return None


class KafkaSink:
    name = "kafka"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._fatal = False  # the producer reported a fatal error: replaced before its next use
        self.producer = self._new_producer()
        self._admin: AdminClient | None = None
        self._durable_at: float | None = None  # when the topic last met kafka_min_insync_replicas

    def _new_producer(self) -> Producer:
        acks, idempotent = self.config.kafka_acks, self.config.kafka_idempotence
        if defects.on("acks_leader_only"):
            acks, idempotent = "1", False  # the bug: "the leader has it" taken for delivered
        retries: dict[str, int] = {}
        if defects.on("broker_errors_dead_lettered"):
            idempotent, retries = False, {"retries": 0}  # "our own loop retries": every broker error comes back
        return Producer({
            "bootstrap.servers": self.config.kafka_bootstrap,
            "client.id": self.config.kafka_client_id,
            "acks": acks,
            "enable.idempotence": idempotent,
            "message.timeout.ms": self.config.kafka_message_timeout_ms,
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "socket.connection.setup.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 1000,
            "message.max.bytes": max(self.config.max_record_bytes + 4096, 1_000_000),
            "error_cb": self._on_error,
            **retries,
        })

    def _on_error(self, err: KafkaError) -> None:
        # For a fatal error the client calls this with its own exception already pending, and the
        # first call into ``err`` raises SystemError from it: the call under way (produce, flush)
        # then raises that, and send() handles it there.
        log.error("kafka client error", extra={"stage": "sink.kafka", "error_class": err.name(), "cause": err.str(),
                                               "fatal": err.fatal()})
        if err.fatal():
            self._fatal = True

    def _renew_if_fatal(self) -> None:
        """An idempotent producer in a fatal state never delivers again: start afresh (what it
        still held is reported failed and stays in the buffer)."""
        if self._fatal:
            self._fatal = False
            log.error("kafka producer in a fatal state; starting a new one", extra={"stage": "sink.kafka"})
            self.producer = self._new_producer()

    def check_durability(self) -> None:
        """TransientError while the topic demands fewer in-sync replicas than this exporter
        expects (exporter.durability): nothing is sent, the records stay in the buffer. A topic
        found fit is looked at again once per metadata poll interval; an unfit one every pass."""
        expected = self.config.kafka_min_insync_replicas
        now = time.monotonic()
        if not expected or (self._durable_at is not None
                            and now - self._durable_at < self.config.metadata_poll_interval_s):
            return
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.config.kafka_bootstrap, "log_level": 0,
                                       "socket.connection.setup.timeout.ms": 1000})
        problem = durability_problem(self._admin, self.config.topic, expected, DURABILITY_TIMEOUT_S)
        if problem is not None:
            self._durable_at = None
            raise TransientError(DURABILITY_STAGE, problem)
        self._durable_at = now

    def send(self, entries: list[Entry], deadline: float) -> SendResult:
        self.check_durability()
        result = SendResult()
        # One bound callback for the batch, keyed by the message key (the record id): no
        # closure per message on the hot path.
        reports: dict[bytes, KafkaError | None] = {}
        received = [0]  # counted apart: a batch may hold the same record twice (a redelivery)

        def report(err: KafkaError | None, msg: object) -> None:
            reports[msg.key()] = err  # type: ignore[attr-defined]
            received[0] += 1

        def report_as(number: bytes) -> Callable[[KafkaError | None, object], None]:
            """Change events are keyed by their row (a row's changes share a partition), so two of
            one batch may share a message key: each reports under its own change number instead."""
            def reported(err: KafkaError | None, _msg: object) -> None:
                reports[number] = err
                received[0] += 1
            return reported

        self._renew_if_fatal()
        skip_confirmation = defects.on("ack_before_send")
        refused: dict[bytes, str] = {}  # records the client refused outright, and why
        try:
            produced = self._produce(entries, report, refused, report_as if self.config.changes else None)
            if skip_confirmation:
                result.delivered.extend(entries[:produced])  # the bug: confirmed before Kafka said anything
            metrics.in_flight.set(produced)
            remaining = self._await_reports(received, produced, deadline)
        except (KafkaException, SystemError) as exc:
            # A fatal error (an out-of-order sequence for an idempotent producer) is raised from
            # the call under way, as itself or as the SystemError our error callback met while
            # it was pending: records with no report yet are failed and sent again.
            error = _kafka_error(exc)
            if error is None:
                raise
            self._fatal = self._fatal or error.fatal()
            remaining = -1
            for entry in entries:
                refused.setdefault(entry.key, f"{error.name()}: {error.str()}")
        finally:
            self._renew_if_fatal()
        metrics.in_flight.set(max(remaining, 0))
        if skip_confirmation:
            return result
        if defects.on("partial_batch_success_acks_all") and any(err is None for err in reports.values()):
            # The bug: the batch is judged as one; a partial success passes for a whole one.
            result.delivered.extend(entries)
            return result
        self._judge_reports(entries, reports, refused, remaining, deadline, result)
        return result

    def _produce(self, entries: list[Entry], report: Callable[[KafkaError | None, object], None],
                 refused: dict[bytes, str],
                 report_as: Callable[[bytes], Callable[[KafkaError | None, object], None]] | None = None) -> int:
        """Hand the batch to the client; how many it took. A refusal of produce() itself (after
        TOPIC_AUTHORIZATION_FAILED librdkafka refuses the topic for a while) fails that record
        and every later one of the batch: they stay in the buffer, in order."""
        producer, topic = self.producer, self.config.topic
        for n, entry in enumerate(entries):
            while True:
                try:
                    if report_as is not None:
                        producer.produce(topic, entry.value, key=row_key(entry.value), on_delivery=report_as(entry.key))
                    else:
                        producer.produce(topic, entry.value, key=entry.key, on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.05)  # local queue full: let delivery reports drain it
                except KafkaException as exc:
                    if exc.args[0].fatal():
                        raise
                    reason = f"{exc.args[0].name()}: {exc.args[0].str()} (refused by the client)"
                    refused.update((later.key, reason) for later in entries[n:])
                    return n
        return len(entries)

    def _await_reports(self, received: list[int], expected: int, deadline: float) -> int:
        """flush() returns how many are still queued: keep polling until every report is in, in
        slices, so that a producer gone fatal meanwhile (it will never deliver) is given up on
        at once rather than at the deadline."""
        producer = self.producer
        remaining = producer.flush(min(FLUSH_SLICE_S, max(0.0, deadline - time.monotonic())))
        while (remaining or received[0] < expected) and time.monotonic() < deadline and not self._fatal:
            remaining = producer.flush(min(FLUSH_SLICE_S, max(0.0, deadline - time.monotonic())))
        return int(remaining)

    def _judge_reports(self, entries: list[Entry], reports: dict[bytes, KafkaError | None], refused: dict[bytes, str],
                       remaining: int, deadline: float, result: SendResult) -> None:
        """Each record by its delivery report: delivered, too large (sent alone), refused for
        good (dead-lettered), or failed (left in the buffer for redelivery)."""
        too_large: list[Entry] = []
        for entry in entries:
            key = entry.key
            if key not in reports:
                result.failed.append((entry, refused.get(key) or f"no delivery report before the deadline "
                                                                  f"({remaining} still queued)"))
                continue
            err = reports[key]
            if err is None or defects.on("ignore_send_errors"):
                result.delivered.append(entry)
            elif (err.code() == KafkaError.MSG_SIZE_TOO_LARGE and len(entries) > 1
                  and not defects.on("too_large_batch_dead_lettered")):
                too_large.append(entry)  # the broker judges a whole batch: this record may be fine alone
            elif err.code() in PERMANENT_KAFKA:
                # No retry can fix these: the record itself is the problem.
                result.dead.append((entry, self._letter(entry, err)))
            elif defects.on("broker_errors_dead_lettered") and err.code() > 0:
                # The bug: any error the broker answered is taken for a refusal of the record.
                result.dead.append((entry, DeadLetter(letter_id(entry, self.config.changes), "rejected_by_broker",
                                                      err.str(), entry.value, "sink.kafka")))
            else:
                result.failed.append((entry, f"{err.name()}: {err.str()}"))
        if too_large:
            self._send_alone(too_large, deadline, result)

    def _letter(self, entry: Entry, err: KafkaError) -> DeadLetter:
        return DeadLetter(letter_id(entry, self.config.changes), PERMANENT_KAFKA[err.code()], err.str(), entry.value,
                          "sink.kafka")

    def _send_alone(self, entries: list[Entry], deadline: float, result: SendResult) -> None:
        """Records of a batch the broker refused as too large, sent one at a time: only a record
        refused on its own is dead-lettered; the rest are delivered (or left for redelivery)."""
        log.warning("a batch was refused as too large; sending its records one by one", extra={
            "stage": "sink.kafka", "count": len(entries)})
        metrics.retries.labels(stage="sink.kafka.too_large_batch").inc()
        reports: list[KafkaError | None] = []

        def report(err: KafkaError | None, _msg: object) -> None:
            reports.append(err)

        for n, entry in enumerate(entries):
            reports.clear()
            key = row_key(entry.value) if self.config.changes else entry.key
            self.producer.produce(self.config.topic, entry.value, key=key, on_delivery=report)
            self.producer.flush(max(0.0, deadline - time.monotonic()))
            if not reports:
                result.failed.extend((e, "no delivery report before the deadline (sent alone)") for e in entries[n:])
                return
            err = reports[0]
            if err is None:
                result.delivered.append(entry)
            elif err.code() in PERMANENT_KAFKA:
                result.dead.append((entry, self._letter(entry, err)))
            else:
                result.failed.append((entry, f"{err.name()}: {err.str()}"))

    def close(self) -> None:
        left = self.producer.flush(5)
        if left:
            log.error("closing with undelivered messages", extra={"stage": "sink.kafka", "queued": left})


class FileSink:
    """JSON lines in the sink encoding, appended to ``records.jsonl``; confirmed by fsync."""

    name = "file"

    def __init__(self, config: Config) -> None:
        self.config = config
        os.makedirs(config.file_sink_dir, exist_ok=True)
        self.path = os.path.join(config.file_sink_dir, "records.jsonl")
        self._batches = 0

    def send(self, entries: list[Entry], deadline: float) -> SendResult:
        result = SendResult()
        chunks: list[bytes] = []
        ready: list[Entry] = []
        for entry in entries:
            try:
                line = json.loads(entry.value)
                chunks.append(encode_text(entry.record_id, json.dumps(line, ensure_ascii=False) + "\n",
                                          self.config.sink_encoding))
                ready.append(entry)
            except PermanentRecordError as exc:
                result.dead.append((entry, DeadLetter(letter_id(entry, self.config.changes), exc.reason, exc.detail,
                                                      entry.value, "sink.file")))
        if ready:
            try:
                self._batches += 1
                lazily = defects.on("file_sink_syncs_lazily") and self._batches % 8 != 0
                append_durably(self.path, b"".join(chunks), sync=not lazily)
            except OSError as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
                result.failed.extend((entry, reason) for entry in ready)
                return result
        result.delivered.extend(ready)
        return result

    def close(self) -> None:
        """Every batch was fsynced when it was confirmed: nothing is held open."""
