"""The run's time series: what the report's charts draw under the shaded fault windows.

A sampler polls, every half second, the buffer's length (directly from Redis) and the
exporter's failure counters. Delivered records per second and end-to-end latency come
afterwards from the sink itself: each Kafka message's timestamp against the time the harness
wrote its row. Times are seconds since the scenario started.
"""

from __future__ import annotations

import bisect
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from harness.infra.redis_client import direct_client
from harness.infra.stack import Stack
from harness.judge.sinks import SinkRecord
from harness.report.result import Point, Series

BUCKET_S = 0.5


@dataclass
class Timeline:
    t: list[float] = field(default_factory=list)
    buffer_length: list[float | None] = field(default_factory=list)
    errors_total: list[float | None] = field(default_factory=list)
    delivered_total: list[float | None] = field(default_factory=list)
    topology: dict[str, list[Point]] = field(default_factory=dict)

    @staticmethod
    def _rate(t: list[float], totals: list[float | None]) -> list[Point]:
        """Per-second rate between samples; a gap or a counter that went back (restart) is skipped."""
        out = []
        for i in range(1, len(t)):
            prev, cur, dt = totals[i - 1], totals[i], t[i] - t[i - 1]
            if prev is not None and cur is not None and cur >= prev and dt > 0:
                out.append((t[i], round((cur - prev) / dt, 2)))
        return out

    def to_series(self, deliveries: dict[float, int], latencies: dict[float, list[float]]) -> Series:
        """Series for the chart: delivered/s (from the sink's timestamps when it has them, else
        from the exporter's counter), buffer length, errors/s and latency p50 in ms."""
        end = max([*self.t, *deliveries.keys(), 0.0])
        buckets = [round(i * BUCKET_S, 3) for i in range(int(end / BUCKET_S) + 2)]
        delivered = ([(b, deliveries.get(b, 0) / BUCKET_S) for b in buckets] if deliveries
                     else self._rate(self.t, self.delivered_total))
        return Series(
            bucket_s=BUCKET_S,
            delivered_per_s=delivered,
            latency_p50_ms=[(b, round(statistics.median(latencies[b]) * 1000, 1)) for b in buckets
                            if latencies.get(b)],
            buffer_length=[(t, v) for t, v in zip(self.t, self.buffer_length, strict=True) if v is not None],
            errors_per_s=self._rate(self.t, self.errors_total),
            topology=self.topology,
        )


class Sampler:
    def __init__(self, stack: Stack, buffer_stream: str, counters: Callable[[], tuple[float, float]],
                 started: float, watches: list[Callable[[], dict[str, float]]] | None = None) -> None:
        self.client = direct_client(stack.redis_url(proxied=False), 2)
        self.stream = buffer_stream
        self.counters = counters  # (delivered, errors) from one scrape of the exporter
        self.started = started
        self.watches = watches or []  # failover steps' probes (harness.steps.base.StepKind.watch)
        self.timeline = Timeline()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeline-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(BUCKET_S):
            self.timeline.t.append(round(time.monotonic() - self.started, 3))
            try:
                self.timeline.buffer_length.append(float(self.client.xlen(self.stream)))
            except redis.RedisError:
                self.timeline.buffer_length.append(None)  # Redis itself is under a fault: a gap in the line
            try:
                delivered, errors = self.counters()
            except Exception:  # noqa: BLE001 - exporter down or frozen under a fault: a gap, not a crash
                delivered, errors = None, None
            self.timeline.delivered_total.append(delivered)
            self.timeline.errors_total.append(errors)
            self._watch(self.timeline.t[-1])

    def _watch(self, t: float) -> None:
        for watch in self.watches:
            try:
                seen = watch()
            except Exception:  # noqa: BLE001 - the watched server is the one failing over: a gap in its line
                continue
            for name, value in seen.items():
                self.timeline.topology.setdefault(name, []).append((t, value))

    def stop(self) -> Timeline:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()
        return self.timeline


class WriteClock:
    """When each record was written (seconds since start), kept as ranges: one entry per chunk."""

    def __init__(self) -> None:
        self._first_ids: list[int] = []
        self._times: list[float] = []

    def add(self, first_id: int, at: float) -> None:
        self._first_ids.append(first_id)
        self._times.append(at)

    def written_at(self, record_id: int) -> float | None:
        i = bisect.bisect_right(self._first_ids, record_id) - 1
        return self._times[i] if i >= 0 else None


def deliveries(records: list[SinkRecord], clock: WriteClock, wall_start: float) -> tuple[dict, dict]:
    """Delivered counts and latencies per bucket, from the sink's own timestamps."""
    counts: dict[float, int] = defaultdict(int)
    latencies: dict[float, list[float]] = defaultdict(list)
    for record in records:
        if record.ts is None:
            continue
        at = record.ts - wall_start
        bucket = round(int(max(at, 0) / BUCKET_S) * BUCKET_S, 3)
        counts[bucket] += 1
        written = clock.written_at(record.record_id) if record.record_id is not None else None
        if written is not None:
            latencies[bucket].append(max(0.0, at - written))
    return counts, latencies
