"""Reconciling 1,000,000 records read back from a real Kafka topic: seconds and peak memory.

The reconcile runs in a child process so its peak RSS (ledger, consumer, classification) is
measured alone. Targets on the 2-core machine: at most 10 s and 300 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

RECORDS = 1_000_000
TARGET_SECONDS = 10.0
TARGET_MB = 300.0
TOPIC = "bench-reconcile"


def _payload(i: int) -> bytes:
    return f"{i:09d}:".encode() + b"r" * 190


def _produce(bootstrap: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 1_000_000, "compression.type": "lz4"})
    for i in range(1, RECORDS + 1):
        value = b'{"id":%d,"key":"k%d","payload":"%s"}' % (i, i, _payload(i))
        while True:
            try:
                producer.produce(TOPIC, value)
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} benchmark records not delivered")


def _high_water_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: that survives exec and would report the
    parent's peak from before the fork."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(bootstrap: str) -> None:
    """Runs alone in a fresh interpreter: build the ledger, read the topic, reconcile."""
    from harness.ledger import Ledger, content_hash
    from harness.reconcile import reconcile
    from harness.sinks import read_topic

    class _Direct:  # read_topic only needs the direct bootstrap address
        def kafka_bootstrap(self, proxied: bool = False) -> str:
            return bootstrap

    ledger = Ledger()
    for i in range(1, RECORDS + 1):
        ledger.add(i, content_hash(_payload(i)), "ok")
    t0 = time.monotonic()
    result = reconcile(ledger, read_topic(_Direct(), TOPIC, timeout=120), [])  # type: ignore[arg-type]
    seconds = time.monotonic() - t0
    peak_mb = _high_water_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "counts": dict(result.counts), "ok": result.ok}))


def run() -> dict:
    from harness.backends.local import LocalBackend

    with LocalBackend() as stack:
        _produce(stack.kafka_bootstrap(proxied=False))
        proc = subprocess.run([sys.executable, __file__, "--child", stack.kafka_bootstrap(proxied=False)],
                              capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"reconcile child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    if figures["counts"] != {"delivered_intact": RECORDS}:
        raise RuntimeError(f"benchmark reconcile misclassified: {figures['counts']}")
    return {
        "records": RECORDS,
        "reconcile_seconds": round(figures["seconds"], 2),
        "peak_rss_mb": round(figures["peak_mb"], 1),
        "target_seconds": TARGET_SECONDS, "target_mb": TARGET_MB,
        "seconds_ratio_to_target": round(figures["seconds"] / TARGET_SECONDS, 3),
        "memory_ratio_to_target": round(figures["peak_mb"] / TARGET_MB, 3),
        "meets_targets": figures["seconds"] <= TARGET_SECONDS and figures["peak_mb"] <= TARGET_MB,
    }


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--child":
    child(sys.argv[2])
