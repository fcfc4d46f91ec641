"""Exporter throughput, Postgres to Kafka with ~200-byte records, next to a raw pipe in the same run.

The raw pipe reads the same rows with COPY and produces them straight to Kafka (no buffer,
no checkpoint, no acknowledgement bookkeeping): the ceiling this machine allows. Targets: at
least 30,000 records/s and at least half the raw pipe's rate.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psycopg
from confluent_kafka import Producer

from harness.backends.local import LocalBackend
from harness.target import ExporterProcess, RunContext, TargetDefinition
from harness.waiting import wait_for
from harness.workload import SourceWriter

RECORDS = 200_000
PAYLOAD = 200
TARGET_RATE = 30_000
TARGET_RATIO = 0.5


def _fill(stack, table: str) -> None:  # noqa: ANN001
    with psycopg.connect(stack.postgres_dsn(proxied=False), autocommit=True) as conn:
        with conn.cursor().copy(f'COPY "{table}" (key, payload) FROM STDIN') as copy:
            for i in range(RECORDS):
                copy.write_row((f"k{i}", (f"{i}:".encode() + b"p" * PAYLOAD)[:PAYLOAD]))


def _raw_pipe(stack, table: str, topic: str) -> float:  # noqa: ANN001
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap(proxied=True), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5, "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 500_000})
    failures = []

    def report(err, _msg) -> None:  # noqa: ANN001
        if err is not None:
            failures.append(err)

    t0 = time.monotonic()
    with psycopg.connect(stack.postgres_dsn(proxied=True)) as conn:
        with conn.cursor().copy(f'COPY (SELECT id, key, payload FROM "{table}" ORDER BY id) TO STDOUT') as copy:
            for row in copy.rows():
                while True:
                    try:
                        producer.produce(topic, bytes(row[2], "latin-1") if isinstance(row[2], str) else row[2],
                                         key=row[0].encode() if isinstance(row[0], str) else bytes(row[0]),
                                         on_delivery=report)
                        break
                    except BufferError:
                        producer.poll(0.05)
    left = producer.flush(60)
    elapsed = time.monotonic() - t0
    assert not left and not failures, f"raw pipe: {left} undelivered, {len(failures)} failed"
    return RECORDS / elapsed


def run() -> dict:
    with LocalBackend() as stack, tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(stack, "bench", Path(tmp))
        SourceWriter(stack, ctx.source_table).create()
        _fill(stack, ctx.source_table)
        raw_rate = _raw_pipe(stack, ctx.source_table, "bench-raw")
        exporter = ExporterProcess(TargetDefinition.load(), ctx, extra_env={
            "EXPORTER_BATCH_SIZE": "5000", "EXPORTER_MAX_BUFFER": "100000", "EXPORTER_LOG_LEVEL": "WARNING"})
        try:
            exporter.start()
            t0 = time.monotonic()
            wait_for(lambda: exporter.metric_total("delivered") >= RECORDS, timeout=300, interval=0.2,
                     what=f"{RECORDS} records delivered")
            rate = RECORDS / (time.monotonic() - t0)
        finally:
            exporter.close()
    ratio = rate / raw_rate
    return {
        "records": RECORDS, "payload_bytes": PAYLOAD,
        "exporter_records_per_s": round(rate), "raw_pipe_records_per_s": round(raw_rate),
        "ratio_to_raw_pipe": round(ratio, 3),
        "target_records_per_s": TARGET_RATE, "target_ratio": TARGET_RATIO,
        "meets_targets": rate >= TARGET_RATE and ratio >= TARGET_RATIO,
    }
