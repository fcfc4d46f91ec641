"""A Redis replica for the local backend: started on request, replicating through a Toxiproxy
link of its own (so that the replication can be cut while clients still reach the primary),
promoted in a failover, and put away again between scenarios.

A failover here is what Sentinel or an operator does: the replica answers ``REPLICAOF NO ONE``,
the clients' proxy is pointed at it (their connections cut, as a moved address cuts them), and the
old primary becomes its replica through a second replication link, throwing away whatever it had
that never reached the replica (replication is asynchronous: that is the loss a failover makes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from harness.errors import HarnessError
from harness.infra.redis_client import no_retry
from harness.infra.toxiproxy import ToxiproxyClient
from harness.infra.waiting import wait_for
from harness.services.executor import ServiceExecutor, free_port
from harness.services.servers import HOST, RedisServer

REPLICATION = "redis-replication"  # primary -> replica
BACK = "redis-replication-back"  # new primary -> old primary, after a failover
SYNC_TIMEOUT_S = 30.0


def _client(port: int, password: str) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, password=password, socket_timeout=5, socket_connect_timeout=5,
                       retry=no_retry())


def replication(port: int, password: str) -> dict[str, Any]:
    """``INFO replication`` of the node on ``port`` (role, offsets, link status)."""
    client = _client(port, password)
    try:
        return dict(client.info("replication"))
    finally:
        client.close()


@dataclass
class RedisReplica:
    """The replica of ``primary`` and the proxies between them; ``failed_over`` once promoted."""

    primary: RedisServer
    toxiproxy: ToxiproxyClient
    workdir: Path
    start_timeout: float
    server: RedisServer | None = None
    executor: ServiceExecutor | None = None
    failed_over: bool = False

    def start(self) -> dict[str, Any]:
        # The replica's first sync without the five seconds Redis waits for more replicas to join
        # a diskless transfer: one replica comes, and a scenario should not wait for others.
        primary = _client(self.primary.port, self.primary.password)
        try:
            primary.config_set("repl-diskless-sync-delay", 0)
        finally:
            primary.close()
        listen = f"{HOST}:{free_port()}"
        self.toxiproxy.create_proxy(REPLICATION, listen, f"{HOST}:{self.primary.port}")
        port = int(listen.rsplit(":", 1)[1])
        self.server = RedisServer(
            "redis-replica", self.workdir / "redis-replica", free_port(), start_timeout=self.start_timeout,
            password=self.primary.password, persistence="none",
            arguments=(*self.primary.arguments, "--masterauth", self.primary.password, "--replicaof", HOST, str(port)))
        self.server.prepare()
        self.executor = self.server.executor()
        self.executor.start()
        wait_for(self._in_sync, timeout=SYNC_TIMEOUT_S, interval=0.1, what="the Redis replica to be in sync")
        return {"replica": f"{HOST}:{self.server.port}", "replicating_through": listen}

    def _in_sync(self) -> bool:
        assert self.server is not None
        info = replication(self.server.port, self.primary.password)
        return info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == 0

    def lag_bytes(self) -> int:
        """The primary's replication offset less what the replica acknowledged."""
        assert self.server is not None
        primary = _offsets(self.primary.port, self.primary.password) or 0
        replica = replication(self.server.port, self.primary.password)
        return max(0, primary - int(replica.get("slave_repl_offset", replica.get("master_repl_offset", 0))))

    def cut(self, cut: bool) -> None:
        self.toxiproxy.proxy(REPLICATION).set_enabled(not cut)

    def fail_over(self, clients_proxy: str) -> dict[str, Any]:
        """Promote the replica; point ``clients_proxy`` at it; demote the old primary."""
        if self.server is None:
            raise HarnessError("redis failover: no replica is running")
        password = self.primary.password
        old = _offsets(self.primary.port, password)
        lagging = replication(self.server.port, password)
        _client(self.server.port, password).execute_command("REPLICAOF", "NO", "ONE")
        proxy = self.toxiproxy.proxy(clients_proxy)
        proxy.set_upstream(f"{HOST}:{self.server.port}")
        proxy.set_enabled(False)  # the clients' connections to the old primary end here
        proxy.set_enabled(True)
        back = f"{HOST}:{free_port()}"
        self.toxiproxy.create_proxy(BACK, back, f"{HOST}:{self.server.port}")
        demoted = _client(self.primary.port, password)
        try:
            demoted.execute_command("REPLICAOF", HOST, back.rsplit(":", 1)[1])
        finally:
            demoted.close()
        self.failed_over = True
        replica_offset = int(lagging.get("slave_repl_offset", lagging.get("master_repl_offset", 0)))
        return {"promoted": f"{HOST}:{self.server.port}", "old_primary_offset": old,
                "replica_offset": replica_offset, "gap_bytes": max(0, (old or 0) - replica_offset)}

    def stop_and_serve_again(self, *then: tuple[str, ...]) -> None:
        """The replica killed; the original primary a primary again (``REPLICAOF NO ONE``, then the
        commands ``then``), whatever the failover left it as."""
        if self.executor is not None:
            self.executor.kill()
        self.executor = None
        client = _client(self.primary.port, self.primary.password)
        try:
            for command in (("REPLICAOF", "NO", "ONE"), *then):
                client.execute_command(*command)
        except redis.RedisError as exc:
            raise HarnessError(f"redis: the original primary at {HOST}:{self.primary.port} cannot serve again after "
                               f"the failover: {exc}") from exc
        finally:
            client.close()

    def put_away(self, clients_proxy: str) -> None:
        """The replica stopped, the original primary serving again behind ``clients_proxy``."""
        self.stop_and_serve_again()
        self.toxiproxy.proxy(clients_proxy).set_upstream(f"{HOST}:{self.primary.port}")
        for name in (REPLICATION, BACK):
            if name in self.toxiproxy.proxies():
                self.toxiproxy.delete_proxy(name)


def _offsets(port: int, password: str) -> int | None:
    """The primary's replication offset (None when it cannot be asked: it died)."""
    try:
        return int(replication(port, password).get("master_repl_offset", 0))
    except redis.RedisError:
        return None
