"""What the local backend runs, read back from the servers and Toxiproxy: each node (running,
registered with its cluster or replicating, its memory) and each proxy (where it listens, what it
forwards to, whether it is up). ``faultline up --topology replicated --check`` prints it."""

from __future__ import annotations

from typing import Any

import psutil
from confluent_kafka import KafkaException

from harness.backends.kafka_peers import KafkaPeers, live_brokers
from harness.backends.postgres_standby import PostgresStandby, query
from harness.backends.redis_replica import RedisReplica, replication
from harness.backends.redis_sentinel import SentinelServer, known_replicas, master_address
from harness.services.executor import ServiceExecutor
from harness.services.servers import HOST


def resident_mb(executor: ServiceExecutor | None) -> float | None:
    """Resident memory of a server's process tree (MiB); None when it is not running."""
    if executor is None or executor.process is None:
        return None
    try:
        root = psutil.Process(executor.process.pid)
        total = sum(p.memory_info().rss for p in (root, *root.children(recursive=True)))
    except psutil.Error:
        return None
    return round(total / 2**20, 1)


def describe_local(executors: dict[str, ServiceExecutor], peers: KafkaPeers | None,
                   replicas: dict[str, RedisReplica], standby: PostgresStandby | None,
                   proxy_table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The local backend's servers (``executors``), its Kafka peers, Redis replica and Postgres
    standby, and Toxiproxy's proxies (``proxy_table``, as its API lists them)."""
    nodes: dict[str, dict[str, Any]] = {}
    for name, executor in executors.items():
        nodes[name] = {"running": executor.running(), "rss_mb": resident_mb(executor)}
    if peers is not None:
        try:
            registered = live_brokers(f"{HOST}:{peers.first.direct_port}")
        except KafkaException as exc:
            registered, nodes["kafka"]["error"] = set(), str(exc)
        nodes["kafka"]["registered"] = 1 in registered
        voters = peers.voters() if peers.running() else {1}
        nodes["kafka"]["controller_voter"] = 1 in voters
        for node, server in peers.servers.items():
            peer = peers.executors.get(node)
            nodes[server.name] = {"running": peer is not None and peer.running(),
                                  "registered": node in registered, "controller_voter": node in voters,
                                  "rss_mb": resident_mb(peer)}
    for service, replica in replicas.items():
        if replica.server is None:
            continue
        info = replication(replica.server.port, replica.primary.password)
        nodes[f"{service}-replica"] = {"running": replica.executor is not None and replica.executor.running(),
                                       "role": info.get("role"), "link": info.get("master_link_status", "-"),
                                       "rss_mb": resident_mb(replica.executor)}
    if standby is not None and standby.server is not None:
        running = standby.executor is not None and standby.executor.running()
        recovering = query(standby.server, "SELECT pg_is_in_recovery()") if running else None
        nodes["postgres-standby"] = {"running": running, "role": "standby" if recovering else "primary",
                                     "link": "up" if running and (not recovering or standby.streaming()) else "down",
                                     "rss_mb": resident_mb(standby.executor)}
    proxies = {name: {"listen": p["listen"], "upstream": p["upstream"], "enabled": p["enabled"]}
               for name, p in sorted(proxy_table.items())}
    total = sum(n["rss_mb"] or 0.0 for n in nodes.values())
    return {"nodes": nodes, "proxies": proxies, "rss_mb_total": round(total, 1)}


def describe_sentinel(sentinel: SentinelServer, executor: ServiceExecutor | None) -> dict[str, Any]:
    """The Sentinel: whether it runs, the primary it hands out and the replicas it knows."""
    running = executor is not None and executor.running()
    node: dict[str, Any] = {"running": running, "role": "sentinel", "rss_mb": resident_mb(executor)}
    if running:
        node["primary"] = master_address(sentinel.port)
        node["replicas"] = [f"{r.get('ip')}:{r.get('port')} ({r.get('flags')})" for r in known_replicas(sentinel.port)]
    return node
