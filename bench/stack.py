"""Cold start of the whole stack (four servers, three proxies), the reset between tests, and the
replicated topology a failover scenario adds (Kafka brokers 2 and 3, a Redis replica, a Postgres
standby, each behind proxies of its own): how long it takes to add and how much memory the
whole stack then holds, beside the single-node stack's.

Targets on the 2-core reference machine: cold start at most 6 s, reset at most 0.3 s, the
replicas added in at most 12 s, the replicated stack within 2 GiB resident. Each figure is
reported next to its target as a ratio (below 1.0 meets it).
"""

from __future__ import annotations

import statistics
import time

from harness.backends.local import LocalBackend
from harness.cli.up import start_replicas
from harness.infra.stack import LINKS
from harness.report.figures import Figure

COLD_STARTS = 3
RESETS = 30
TARGET_COLD_S = 6.0
TARGET_RESET_S = 0.3
TARGET_REPLICAS_S = 12.0
TARGET_REPLICATED_MB = 2048.0


def replicated(backend: LocalBackend) -> dict:
    """The replicas a failover scenario starts, timed, and the stack's memory before and after."""
    single_mb = backend.topology()["rss_mb_total"]
    t0 = time.monotonic()
    start_replicas(backend)
    seconds = time.monotonic() - t0
    described = backend.topology()
    assert all(node["running"] for node in described["nodes"].values()), described
    return {"single_node_rss_mb": single_mb, "replicated_rss_mb": described["rss_mb_total"],
            "replicas_start_seconds": round(seconds, 3), "replicas_target_seconds": TARGET_REPLICAS_S,
            "replicas_ratio_to_target": round(seconds / TARGET_REPLICAS_S, 3),
            "replicated_rss_target_mb": TARGET_REPLICATED_MB,
            "replicated_rss_ratio_to_target": round(described["rss_mb_total"] / TARGET_REPLICATED_MB, 3)}


def run() -> dict:
    cold: list[float] = []
    resets: list[float] = []
    topology: dict = {}
    for i in range(COLD_STARTS):
        t0 = time.monotonic()
        backend = LocalBackend()
        stack = backend.start()
        cold.append(time.monotonic() - t0)
        try:
            if i == 0:
                for _ in range(RESETS):
                    # Dirty every link as a test would, then time the reset that cleans it.
                    for link in LINKS:
                        proxy = stack.proxy(link)
                        proxy.add_toxic("latency", latency=100)
                        proxy.disable()
                    t1 = time.monotonic()
                    stack.reset()
                    resets.append(time.monotonic() - t1)
                    assert all(stack.proxy(link).enabled and not stack.proxy(link).toxics() for link in LINKS)
                topology = replicated(backend)
        finally:
            backend.stop()
    cold_median = statistics.median(cold)
    reset_p95 = sorted(resets)[int(0.95 * (len(resets) - 1))]
    return {
        "figures": [Figure("cold start of the stack (4 servers, 3 proxies)", "s", tuple(round(x, 3) for x in cold),
                           "lower", TARGET_COLD_S),
                    Figure(f"reset between tests, p95 of {RESETS}", "s", (round(reset_p95, 4),), "lower",
                           TARGET_RESET_S),
                    Figure("replicas added for a failover scenario", "s", (topology["replicas_start_seconds"],),
                           "lower", TARGET_REPLICAS_S),
                    Figure("replicated stack's resident memory", "MB", (topology["replicated_rss_mb"],), "lower",
                           TARGET_REPLICATED_MB)],
        "cold_start_seconds": [round(x, 3) for x in cold],
        "cold_start_median_seconds": round(cold_median, 3),
        "cold_start_target_seconds": TARGET_COLD_S,
        "cold_start_ratio_to_target": round(cold_median / TARGET_COLD_S, 3),
        "reset_median_seconds": round(statistics.median(resets), 4),
        "reset_p95_seconds": round(reset_p95, 4),
        "reset_target_seconds": TARGET_RESET_S,
        "reset_ratio_to_target": round(reset_p95 / TARGET_RESET_S, 3),
        **topology,
        "meets_targets": (cold_median <= TARGET_COLD_S and reset_p95 <= TARGET_RESET_S
                          and topology["replicas_ratio_to_target"] <= 1
                          and topology["replicated_rss_ratio_to_target"] <= 1),
    }
