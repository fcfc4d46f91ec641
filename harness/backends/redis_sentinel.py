"""A Redis Sentinel, for a target that finds its buffer's primary through one
(``redis_discovery = "sentinel"``), and the replica and failover that go with it.

Sentinel hands clients the addresses it knows, so every address it knows is a proxy: it monitors
the primary through the ``redis`` proxy (the link that link faults cut), and the replica announces
its own proxy (``redis-replica``, ``replica-announce-port``). The replica replicates through the
``redis`` proxy too: Sentinel re-points a replica whose master address differs from the one it
monitors (``+fix-slave-config``), so the replication cannot have a proxy of its own. It is cut
where Redis itself decides instead: the replica authenticates as a user of its own
(``replicator``), and the cut switches that user off on the primary and drops its connection
(``ACL SETUSER off``, ``CLIENT KILL USER``): the replica's link is down while every client still
reaches the primary. The failover is Sentinel's own (``SENTINEL FAILOVER``): it promotes the
replica, hands clients the replica's proxy, and some seconds later turns the old primary into its
replica (until then the old primary still takes writes from connections that did not move: the
window in which a Sentinel failover loses writes even without lag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis

from harness.backends.redis_replica import SYNC_TIMEOUT_S, RedisReplica, _client, _offsets, replication
from harness.errors import HarnessError
from harness.infra.redis_client import no_retry
from harness.infra.stack import SENTINEL_SERVICE
from harness.infra.waiting import wait_for
from harness.provision import require
from harness.services.executor import ServiceExecutor, free_port, release_port
from harness.services.servers import HOST, RedisServer, Server, random_secret

SERVICE = SENTINEL_SERVICE
PROXY = "redis-sentinel"  # clients -> Sentinel
REPLICA_PROXY = "redis-replica"  # clients (and the old primary, after a failover) -> the replica
REPLICATION_USER = "replicator"
# A primary is down for Sentinel after this long without an answer; a replica whose link has been
# down for ten times this is not promoted (a forced failover included): a cut window stays below.
DOWN_AFTER_MS = 10_000
FAILOVER_TIMEOUT_MS = 60_000
SWITCH_TIMEOUT_S = 30.0


def sentinel_client(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, socket_timeout=5, socket_connect_timeout=5, retry=no_retry(),
                       decode_responses=True)


def _ask(port: int, *command: Any) -> Any:
    client = sentinel_client(port)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def _ready(port: int) -> bool:
    return _ask(port, "PING") in (True, "PONG")


def master_address(port: int) -> str | None:
    """Where the Sentinel on ``port`` says the primary is (host:port), or None."""
    answer = _ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
    return None if not answer else f"{answer[0]}:{answer[1]}"


def known_replicas(port: int) -> list[dict[str, Any]]:
    """The replicas the Sentinel knows, each with its address, flags and link (as it says them)."""
    # redis-py parses some answers into a dict already, others stay [key, value, ...]
    return [{str(k): str(v) for k, v in (item.items() if isinstance(item, dict)
                                          else zip(item[::2], item[1::2], strict=True))}
            for item in _ask(port, "SENTINEL", "REPLICAS", SERVICE)]


@dataclass
class SentinelServer(Server):
    """One Sentinel (quorum 1), told what to monitor by ``monitor`` (and keeping it in its file)."""

    auth: str = field(default="", repr=False)  # the nodes' password (the Sentinel reconfigures them)
    replication_password: str = field(default_factory=random_secret, repr=False)

    @property
    def config_path(self) -> Any:
        return self.root / "sentinel.conf"

    def prepare(self) -> None:
        super().prepare()
        # Sentinel rewrites its configuration as it learns: the file must be its own, writable.
        self.config_path.write_text(f"port {self.port}\nbind {HOST}\ndaemonize no\ndir {self.root}\n"
                                    "sentinel resolve-hostnames no\n")

    def executor(self) -> ServiceExecutor:
        command = [require("redis").path, str(self.config_path), "--sentinel"]
        return ServiceExecutor(self.name, command, host=HOST, port=self.port, log_path=self.log_path,
                               timeout=self.start_timeout, ready=partial(_ready, self.port))

    def replication_user(self) -> list[str]:
        """Server arguments that give the replica a user of its own (what a replication cut switches off)."""
        return ["--user", REPLICATION_USER, "on", f">{self.replication_password}", "+psync", "+replconf", "+ping"]

    def monitor(self, port: int) -> None:
        """Monitor the primary behind ``HOST:port`` afresh (forgetting replicas and failovers)."""
        if master_address(self.port) is not None:
            _ask(self.port, "SENTINEL", "REMOVE", SERVICE)
        _ask(self.port, "SENTINEL", "MONITOR", SERVICE, HOST, port, 1)
        _ask(self.port, "SENTINEL", "SET", SERVICE, "auth-pass", self.auth, "down-after-milliseconds",
             DOWN_AFTER_MS, "failover-timeout", FAILOVER_TIMEOUT_MS)


@dataclass
class SentinelReplica(RedisReplica):
    """The primary's replica as Sentinel knows it: announced at its own proxy, replicating as
    ``replicator`` through the primary's client proxy, promoted by the Sentinel."""

    sentinel: SentinelServer | None = None
    clients_port: int = 0  # the primary's client proxy: the replica's way to it, and Sentinel's
    proxy_port: int = 0

    def start(self) -> dict[str, Any]:
        assert self.sentinel is not None
        primary = _client(self.primary.port, self.primary.password)
        try:
            primary.config_set("repl-diskless-sync-delay", 0)
        finally:
            primary.close()
        port, self.proxy_port = free_port(), free_port()
        self.toxiproxy.create_proxy(REPLICA_PROXY, f"{HOST}:{self.proxy_port}", f"{HOST}:{port}")
        self.server = RedisServer(
            "redis-replica", self.workdir / "redis-replica", port, start_timeout=self.start_timeout,
            password=self.primary.password, persistence="none",
            arguments=(*self.primary.arguments, "--masteruser", REPLICATION_USER, "--masterauth",
                       self.sentinel.replication_password, "--replicaof", HOST, str(self.clients_port),
                       "--replica-announce-ip", HOST, "--replica-announce-port", str(self.proxy_port)))
        self.server.prepare()
        self.executor = self.server.executor()
        self.executor.start()
        wait_for(self._in_sync, timeout=SYNC_TIMEOUT_S, interval=0.1, what="the Redis replica to be in sync")
        # Monitored afresh, the Sentinel asks the primary for its replicas at once (a RESET, or
        # nothing, waits for its next poll: 10 s measured).
        self.sentinel.monitor(self.clients_port)
        wait_for(self._known, timeout=SYNC_TIMEOUT_S, interval=0.1, what="the Sentinel to know the Redis replica")
        return {"replica": f"{HOST}:{port}", "announced_as": f"{HOST}:{self.proxy_port}",
                "replicating_through": f"{HOST}:{self.clients_port} as {REPLICATION_USER}"}

    def _known(self) -> bool:
        assert self.sentinel is not None
        return any(r.get("port") == str(self.proxy_port) and r.get("master-link-status") == "ok"
                   and not set(r.get("flags", "").split(",")) & {"s_down", "disconnected"}
                   for r in known_replicas(self.sentinel.port))

    def cut(self, cut: bool) -> None:
        primary = _client(self.primary.port, self.primary.password)
        try:
            primary.execute_command("ACL", "SETUSER", REPLICATION_USER, "off" if cut else "on")
            if cut:
                primary.execute_command("CLIENT", "KILL", "USER", REPLICATION_USER)
        finally:
            primary.close()

    def fail_over(self, clients_proxy: str) -> dict[str, Any]:
        """Sentinel's forced failover; returns once clients are handed the replica and the old
        primary replicates from it."""
        if self.server is None or self.sentinel is None:
            raise HarnessError("redis failover: no replica is running")
        password = self.primary.password
        old = _offsets(self.primary.port, password)
        lagging = replication(self.server.port, password)
        sentinel = self.sentinel.port
        before = master_address(sentinel)
        _ask(sentinel, "SENTINEL", "FAILOVER", SERVICE)
        promoted = f"{HOST}:{self.proxy_port}"
        wait_for(lambda: master_address(sentinel) == promoted, timeout=SWITCH_TIMEOUT_S, interval=0.1,
                 what=f"the Sentinel to hand out {promoted} as the primary")
        wait_for(self._old_primary_demoted, timeout=SWITCH_TIMEOUT_S, interval=0.2,
                 what="the Sentinel to make the old primary a replica")
        self.failed_over = True
        replica_offset = int(lagging.get("slave_repl_offset", lagging.get("master_repl_offset", 0)))
        return {"promoted": f"{HOST}:{self.server.port} (announced as {promoted})", "sentinel_before": before,
                "sentinel_after": promoted, "old_primary_offset": old, "replica_offset": replica_offset,
                "gap_bytes": max(0, (old or 0) - replica_offset)}

    def _old_primary_demoted(self) -> bool:
        info = replication(self.primary.port, self.primary.password)
        return info.get("role") == "slave" and str(info.get("master_port")) == str(self.proxy_port)

    def put_away(self, clients_proxy: str) -> None:
        """The replica stopped and its proxy gone; the original primary serving again, monitored afresh."""
        assert self.sentinel is not None
        self.stop_and_serve_again(("ACL", "SETUSER", REPLICATION_USER, "on"))  # a cut may have left it off
        self.sentinel.monitor(self.clients_port)
        if REPLICA_PROXY in self.toxiproxy.proxies():
            self.toxiproxy.delete_proxy(REPLICA_PROXY)
        if self.server is not None:
            release_port(self.server.port)
