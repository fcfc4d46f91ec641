"""``faultline up``: the stack (one node per server, or replicated) started and held, or checked once."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click

from harness.backends.factory import BACKENDS, make_backend
from harness.cli.base import EXIT_HARNESS, FiniteFloat
from harness.cli.output import console
from harness.infra.lifecycle import unwind_on
from harness.infra.stack import ServiceControl, Stack

TOPOLOGIES = ("single", "replicated")


def start_topology(stack: Stack, topology: str) -> dict[str, Any]:
    """The replicas ``topology`` asks for, started and timed ({} for one node per server)."""
    if topology == "single":
        return {}
    began = time.monotonic()
    started = start_replicas(stack.backend)
    return {"replicas": started, "replicas_start_seconds": round(time.monotonic() - began, 3)}


def start_replicas(backend: ServiceControl) -> dict[str, Any]:
    """Every server's replicas, started side by side (each touches its own nodes and proxies):
    the slowest (Kafka's two JVMs joining the quorum) sets the pace, not their sum."""
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="faultline-replica") as pool:
        futures = {server: pool.submit(backend.start_replica, server) for server in ("kafka", "redis", "postgres")}
        return {server: future.result() for server, future in futures.items()}


def topology_ok(described: dict[str, Any] | None) -> bool:
    """Every node running (and registered or replicating) and every proxy up."""
    if described is None:
        return True
    nodes = described["nodes"].values()
    return (all(n.get("running") and n.get("registered", True) and n.get("link", "up") == "up" for n in nodes)
            and all(p["enabled"] for p in described["proxies"].values()))


@click.command()
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--check", is_flag=True,
              help="Start, verify every service through its proxy, stop, print one JSON object.")
@click.option("--start-timeout", type=FiniteFloat(1, 3600), default=60.0, show_default=True)
@click.option("--topology", type=click.Choice(TOPOLOGIES), default="single", show_default=True,
              help="single: one node per server. replicated: also Kafka brokers 2 and 3, a Redis replica and a "
                   "Postgres standby, every link between them a proxy (what failover scenarios start on their own).")
@click.option("--redis-sentinel", is_flag=True,
              help="Also a Redis Sentinel monitoring the primary (what a target with redis_discovery = \"sentinel\" "
                   "gets); with --topology replicated it knows the replica too.")
def up(backend: str, check: bool, start_timeout: float, topology: str, redis_sentinel: bool) -> None:
    """Start the stack and print its endpoints until Ctrl-C."""
    from harness.infra.stack import LINKS
    from harness.services import probes

    # As `run` does: Ctrl-C stops it even when it was started from a script in the background,
    # which hands it SIGINT ignored (CI's `bash .ci/run &` left a stack up past its test). Before
    # anything starts: installed after the endpoints were printed, a Ctrl-C in between was
    # ignored for good (a test sending SIGINT on the last line waited 60 s, on a busy machine).
    unwind_on(signal.SIGINT)

    with make_backend(backend, start_timeout=start_timeout, redis_sentinel=redis_sentinel) as stack:
        replicated = start_topology(stack, topology)
        if check:
            ready = {
                "postgres": probes.postgres_ready(stack.postgres.proxied.host, stack.postgres.proxied.port,
                                                  stack.postgres_user, stack.postgres_password,
                                                  stack.postgres_database),
                "redis": probes.redis_ready(stack.redis.proxied.host, stack.redis.proxied.port,
                                            stack.redis_password),
                "kafka": probes.kafka_ready(stack.kafka_bootstrap(proxied=True)),
                "toxiproxy": bool(stack.toxiproxy.version()),
            }
            result = {
                "ok": all(ready.values()),
                "services": {name: {"ready": ready[name],
                                    "start_seconds": round(stack.start_seconds.get(name, 0.0), 3),
                                    **({"direct": stack.link(name).direct.address,
                                        "proxied": stack.link(name).proxied.address} if name in LINKS
                                       else {"api": stack.toxiproxy_api.address})}
                             for name in ready},
                "total_start_seconds": round(stack.start_seconds["total"], 3),
            }
            if replicated or redis_sentinel:
                described = {**replicated, **stack.backend.topology()}
                result["topology"] = described
                result["ok"] = bool(result["ok"]) and topology_ok(described)
            click.echo(json.dumps(result))
            if not result["ok"]:
                sys.exit(EXIT_HARNESS)
            return
        described = stack.describe()
        described["postgres_dsn"] = stack.postgres_dsn()
        described["redis_url"] = stack.redis_url()
        described["kafka_bootstrap"] = stack.kafka_bootstrap()
        if replicated:
            described["topology"] = {**replicated, **stack.backend.topology()}
        click.echo(json.dumps(described, indent=2), nl=True)
        console.print("[green]stack is up[/]; Ctrl-C stops it")
        stop = threading.Event()
        while not stop.wait(3600):  # woken by Ctrl-C/SIGTERM as KeyboardInterrupt
            continue
