"""The local backend's replicas and failovers: a Redis replica, a Postgres standby and Kafka
brokers 2 and 3, each started when a failover step prepares, driven by the steps, read back for
``up --check`` and put away between scenarios. A mixin of :class:`LocalBackend`, kept apart so
that starting and stopping single servers stays readable on its own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.kafka_peers import PEERS, KafkaPeers
from harness.backends.postgres_standby import CATCH_UP_TIMEOUT_S, PostgresStandby, carry_sequences, position, query
from harness.backends.redis_replica import RedisReplica
from harness.backends.redis_sentinel import PROXY as SENTINEL_PROXY
from harness.backends.redis_sentinel import SentinelReplica, SentinelServer
from harness.backends.topology import describe_local, describe_sentinel
from harness.errors import HarnessError
from harness.infra.stack import Endpoint, Link, Stack
from harness.infra.toxiproxy import ToxiproxyClient
from harness.infra.waiting import wait_for
from harness.services.executor import ServiceExecutor, free_port
from harness.services.servers import HOST, KafkaServer, PostgresServer, RedisServer, Server


class LocalFailover:
    """Replica handling over the local backend's servers (the attributes below are its)."""

    servers: dict[str, Server]
    executors: dict[str, ServiceExecutor]
    workdir: Path | None
    start_timeout: float
    replicas: dict[str, RedisReplica]
    kafka_peers: KafkaPeers | None
    standby: PostgresStandby | None
    fenced: set[str]
    rejoined = False  # the old Postgres primary runs as the promoted standby's standby
    _stack: Stack | None
    proxy_ports: dict[str, int]
    redis_sentinel: bool
    sentinel: SentinelServer | None = None  # a target that finds its Redis primary through one has it
    sentinel_executor: ServiceExecutor | None = None
    sentinel_proxy_port = 0
    replicated = frozenset({"redis", "kafka", "postgres"})

    if TYPE_CHECKING:  # the backend's own, used here
        def kill_service(self, service: str) -> None: ...
        def stop_service(self, service: str) -> None: ...
        def start_service(self, service: str) -> None: ...

    # -- Sentinel -------------------------------------------------------------------------------
    def _plan_sentinel(self) -> tuple[str, ...]:
        """Before the servers start: the Sentinel's place, and the Redis user its replica
        replicates as (server arguments for the primary); nothing without a Sentinel."""
        self.sentinel = None
        if not self.redis_sentinel:
            return ()
        assert self.workdir is not None
        self.sentinel = SentinelServer("redis-sentinel", self.workdir / "redis-sentinel", free_port(),
                                       start_timeout=self.start_timeout)
        self.sentinel_proxy_port = free_port()
        return tuple(self.sentinel.replication_user())

    def _start_sentinel(self, password: str) -> Endpoint | None:
        """Once Redis and its proxy run: the Sentinel started, monitoring the primary through that proxy."""
        if self.sentinel is None:
            return None
        self.sentinel.auth = password
        self.sentinel.prepare()
        self._ensure_sentinel()
        self.sentinel.monitor(self.proxy_ports["redis"])
        return Endpoint(HOST, self.sentinel_proxy_port)

    def _ensure_sentinel(self) -> None:
        if self.sentinel is None or (self.sentinel_executor is not None and self.sentinel_executor.running()):
            return
        if self.sentinel_executor is not None:
            self.sentinel_executor.kill()  # it died under a test: collected, then started again
        self.sentinel_executor = self.sentinel.executor()
        self.sentinel_executor.start()

    def _create_sentinel_proxy(self) -> None:
        if self.sentinel is None:
            return
        control = self._replica_control()
        try:
            control.create_proxy(SENTINEL_PROXY, f"{HOST}:{self.sentinel_proxy_port}", f"{HOST}:{self.sentinel.port}")
        finally:
            control.close()

    def _stop_sentinel(self) -> None:
        if self.sentinel_executor is not None:
            self.sentinel_executor.kill()
        self.sentinel_executor = None
        self.sentinel = None

    # -- replicas and failover ------------------------------------------------------------------
    def _replica(self, service: str) -> RedisReplica:
        if service not in self.replicated:
            raise HarnessError(f"the local backend runs no replica of {service}; it does for "
                               f"{', '.join(sorted(self.replicated))}")
        replica = self.replicas.get(service)
        if replica is None:
            raise HarnessError(f"no replica of {service} is running (a failover step starts one when it prepares)")
        return replica

    def start_replica(self, service: str) -> dict[str, Any]:
        if service not in self.replicated:
            raise HarnessError(f"the local backend runs no replica of {service}; it does for "
                               f"{', '.join(sorted(self.replicated))}")
        if service == "kafka":
            return self._start_kafka_peers()
        if service == "postgres":
            return self._start_standby()
        if service in self.replicas:
            return {"replica": "already running"}
        primary = self.servers["redis"]
        assert isinstance(primary, RedisServer) and self.workdir is not None
        replica: RedisReplica
        if self.sentinel is not None:
            replica = SentinelReplica(primary, self._replica_control(), self.workdir, self.start_timeout,
                                      sentinel=self.sentinel, clients_port=self.proxy_ports["redis"])
        else:
            replica = RedisReplica(primary, self._replica_control(), self.workdir, self.start_timeout)
        self.replicas[service] = replica
        return replica.start()

    def _start_kafka_peers(self) -> dict[str, Any]:
        if self.kafka_peers is None:
            first = self.servers["kafka"]
            assert isinstance(first, KafkaServer) and self.workdir is not None
            self.kafka_peers = KafkaPeers(first, self._replica_control(), self.workdir, self.start_timeout)
        elif self.kafka_peers.running() == set(PEERS):
            return {"brokers": "already running"}
        return self.kafka_peers.start()

    def _start_standby(self) -> dict[str, Any]:
        if self.standby is not None:
            return {"standby": "already running"}
        primary = self.servers["postgres"]
        assert isinstance(primary, PostgresServer) and self.workdir is not None
        self.standby = PostgresStandby(primary, self._replica_control(), self.workdir, self.start_timeout)
        return self.standby.start()

    def _standby(self) -> PostgresStandby:
        if self.standby is None or self.standby.server is None:
            raise HarnessError("no Postgres standby is running (a failover step starts one when it prepares)")
        return self.standby

    def _fail_over_postgres(self, planned: bool) -> dict[str, Any]:
        """Planned: the primary shut down cleanly (its standby sent everything) and then the standby
        promoted. Unplanned: the primary killed and fenced, the standby promoted with what it had."""
        standby = self._standby()
        lsn, sequences = position(standby.primary)
        if planned:
            self.stop_service("postgres")
            standby.wait_replayed_received()
        else:
            self.kill_service("postgres")
        self.fenced.add("postgres")
        evidence = standby.promote(lsn)
        assert standby.server is not None
        evidence["sequences_carried"] = carry_sequences(standby.server, sequences)
        evidence["old_primary"] = "shut down cleanly, fenced" if planned else "killed, fenced"
        self._point_clients("postgres", standby.server.port)
        return evidence

    def _point_clients(self, service: str, port: int) -> None:
        """The clients' proxy (and the stack's direct address) to ``port``; their connections cut."""
        control = self._replica_control()
        try:
            proxy = control.proxy(service)
            proxy.set_upstream(f"{HOST}:{port}")
            proxy.set_enabled(False)
            proxy.set_enabled(True)
        finally:
            control.close()
        if self._stack is not None:
            link = self._stack.link(service)
            setattr(self._stack, service, Link(service, Endpoint(HOST, port), link.proxied))

    def rejoin_old_primary(self, service: str) -> dict[str, Any]:
        """The fenced old primary rewound onto the new primary's timeline and started as its standby."""
        if service != "postgres":
            raise HarnessError(f"the local backend rejoins an old Postgres primary only, not {service}'s")
        standby = self._standby()
        old = self.servers["postgres"]
        assert isinstance(old, PostgresServer)
        evidence = standby.rewind(old)
        self.fenced.discard("postgres")
        self.start_service("postgres")
        self.rejoined = True
        assert standby.server is not None
        wait_for(lambda: query(old, "SELECT status FROM pg_stat_wal_receiver") == "streaming",
                 timeout=CATCH_UP_TIMEOUT_S, interval=0.2, what="the rejoined old primary to stream from the new one")
        evidence["old_primary_in_recovery"] = bool(query(old, "SELECT pg_is_in_recovery()"))
        return evidence

    def _put_standby_away(self) -> None:
        standby, self.standby = self.standby, None
        if standby is None:
            return
        standby.put_away()
        standby.toxiproxy.close()
        self.fenced.discard("postgres")
        if "postgres" not in self.executors:
            self.start_service("postgres")
        if self.rejoined:  # the original is the dead standby's standby: it serves again once promoted
            original = self.servers["postgres"]
            assert isinstance(original, PostgresServer)
            if not query(original, "SELECT pg_promote(true, 60)"):
                raise HarnessError(f"postgres: the rejoined original primary at {HOST}:{original.port} did not "
                                   "promote in 60 s")
            self.rejoined = False
        self._point_clients("postgres", self.servers["postgres"].port)

    def _peers(self) -> KafkaPeers:
        if self.kafka_peers is None:
            raise HarnessError("kafka runs one broker: no failover step started its peers")
        return self.kafka_peers

    def kill_broker(self, node: int) -> None:
        self._peers().kill(node)

    def start_broker(self, node: int) -> None:
        self._peers().start_again(node)

    def cut_broker_replication(self, node: int, cut: bool) -> None:
        self._peers().cut(node, cut)

    def _replica_control(self) -> ToxiproxyClient:
        return ToxiproxyClient(HOST, self.servers["toxiproxy"].port)

    def proxy_table(self) -> dict[str, dict[str, Any]]:
        client = self._replica_control()
        try:
            return client.proxies()
        finally:
            client.close()

    def cut_replication(self, service: str, cut: bool) -> None:
        if service == "postgres":
            self._standby().cut(cut)
            return
        self._replica(service).cut(cut)

    def fail_over(self, service: str, planned: bool = False) -> dict[str, Any]:
        if service == "postgres":
            return self._fail_over_postgres(planned)
        replica = self._replica(service)
        evidence = replica.fail_over(service)
        if self._stack is not None and replica.server is not None:
            self._stack.redis = Link("redis", Endpoint(HOST, replica.server.port), self._stack.redis.proxied)
        return evidence

    def replication_lag(self, service: str) -> float | None:
        if service == "postgres" and self.standby is not None and not self.standby.promoted:
            return float(self.standby.lag_bytes())
        replica = self.replicas.get(service)
        if service == "redis" and replica is not None and not replica.failed_over:
            return float(replica.lag_bytes())
        return None

    def topology(self) -> dict[str, Any]:
        described = describe_local(self.executors, self.kafka_peers, self.replicas, self.standby, self.proxy_table())
        if self.sentinel is not None:
            described["nodes"]["redis-sentinel"] = describe_sentinel(self.sentinel, self.sentinel_executor)
        return described

    def restore_topology(self) -> None:
        if self.kafka_peers is not None:
            self.kafka_peers.put_away()
        self._put_standby_away()
        for service, replica in list(self.replicas.items()):
            del self.replicas[service]
            replica.put_away(service)
            replica.toxiproxy.close()
            if self._stack is not None:
                self._stack.redis = Link("redis", Endpoint(HOST, self.servers["redis"].port), self._stack.redis.proxied)
