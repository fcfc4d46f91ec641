"""Local backend: every server a child process on a free loopback port in a temporary directory."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.backends.base import Backend
from harness.backends.kafka_peers import KafkaPeers, replication_proxy
from harness.backends.local_failover import LocalFailover
from harness.backends.postgres_standby import PostgresStandby
from harness.backends.redis_replica import RedisReplica
from harness.errors import HarnessError, UnknownServiceError
from harness.infra.credentials import ExporterCredentials, provision
from harness.infra.reaper import RECORDER
from harness.infra.stack import LINKS, SERVICES, Endpoint, Link, Stack
from harness.infra.toxiproxy import ToxiproxyClient
from harness.services.executor import ServiceExecutor, free_port
from harness.services.servers import (
    HOST,
    KafkaServer,
    PostgresServer,
    RedisServer,
    Server,
    ToxiproxyServer,
    private_directory,
    remove_tree,
)


class LocalBackend(LocalFailover, Backend):
    name = "local"
    runs_sentinel = True

    def __init__(self, *, start_timeout: float = 60.0, redis_persistence: str = "aof",
                 base_dir: str | None = None) -> None:
        super().__init__()
        self.start_timeout = start_timeout
        self.redis_persistence = redis_persistence
        self.base_dir = base_dir
        self.workdir: Path | None = None
        self.servers: dict[str, Server] = {}
        self.executors: dict[str, ServiceExecutor] = {}
        self.proxy_ports: dict[str, int] = {}
        self.frozen: set[str] = set()
        self.replicas: dict[str, RedisReplica] = {}  # replicas a failover step started, by server
        self.kafka_peers: KafkaPeers | None = None  # brokers 2 and 3, once a failover step asked for them
        self.replication_proxy_port = 0  # where node 1's followers fetch from (its replication proxy)
        self.standby: PostgresStandby | None = None  # a Postgres standby a failover step started
        self.fenced: set[str] = set()  # old primaries a failover stopped: never started again until put away

    # -- start ------------------------------------------------------------------------------
    def _start(self) -> Stack:
        began = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix="faultline-", dir=self.base_dir))
        # Postgres runs as an unprivileged user when we are root: the directory is that user's, 0700.
        private_directory(self.workdir)
        RECORDER.directory(self.workdir)
        self.proxy_ports = {link: free_port() for link in LINKS}
        self.replication_proxy_port = free_port()
        exporter = ExporterCredentials()
        wd, t = self.workdir, self.start_timeout
        redis_users = tuple(exporter.redis_user_directive()) + self._plan_sentinel()
        self.servers = {
            "toxiproxy": ToxiproxyServer("toxiproxy", wd / "toxiproxy", free_port(), start_timeout=t),
            "postgres": PostgresServer("postgres", wd / "postgres", free_port(), start_timeout=t,
                                       settings=self.postgres_settings()),
            "redis": RedisServer("redis", wd / "redis", free_port(), start_timeout=t,
                                 persistence=self.redis_persistence, arguments=redis_users),
            "kafka": KafkaServer("kafka", wd / "kafka", free_port(), start_timeout=t,
                                 direct_port=free_port(), controller_port=free_port(),
                                 advertised_port=self.proxy_ports["kafka"], replication_port=free_port(),
                                 replication_advertised_port=self.replication_proxy_port),
        }
        seconds: dict[str, float] = {}

        def boot(name: str) -> None:
            t0 = time.monotonic()
            server = self.servers[name]
            server.prepare()
            self._launch(name)
            if name == "toxiproxy":
                self._create_proxies()
            seconds[name] = time.monotonic() - t0

        # All four at once: the slowest (Kafka's JVM) sets the pace, not their sum.
        with ThreadPoolExecutor(max_workers=len(self.servers), thread_name_prefix="faultline-boot") as pool:
            futures = {name: pool.submit(boot, name) for name in self.servers}
            errors = [f.exception() for f in futures.values() if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]
        seconds["total"] = time.monotonic() - began
        pg, rd = self.servers["postgres"], self.servers["redis"]
        assert isinstance(pg, PostgresServer) and isinstance(rd, RedisServer)
        kafka = self.servers["kafka"]
        assert isinstance(kafka, KafkaServer)
        stack = Stack(
            backend=self,
            postgres=Link("postgres", Endpoint(HOST, pg.port), Endpoint(HOST, self.proxy_ports["postgres"])),
            redis=Link("redis", Endpoint(HOST, rd.port), Endpoint(HOST, self.proxy_ports["redis"])),
            kafka=Link("kafka", Endpoint(HOST, kafka.direct_port), Endpoint(HOST, self.proxy_ports["kafka"])),
            toxiproxy_api=Endpoint(HOST, self.servers["toxiproxy"].port),
            postgres_user=pg.user, postgres_password=pg.password, postgres_database=pg.database,
            redis_password=rd.password, workdir=self.workdir, start_seconds=seconds, exporter=exporter,
            redis_sentinel=self._start_sentinel(rd.password),
        )
        provision(stack)
        return stack

    def _create_proxies(self) -> None:
        client = ToxiproxyClient(HOST, self.servers["toxiproxy"].port)
        try:
            for link in LINKS:
                # Kafka's proxy forwards to the PLAINTEXT listener, which advertises the proxy.
                upstream_port = self.servers[link].port
                client.create_proxy(link, f"{HOST}:{self.proxy_ports[link]}", f"{HOST}:{upstream_port}")
            kafka = self.servers["kafka"]
            assert isinstance(kafka, KafkaServer)
            client.create_proxy(replication_proxy(1), f"{HOST}:{self.replication_proxy_port}",
                                f"{HOST}:{kafka.replication_port}")
        finally:
            client.close()
        if self.kafka_peers is not None and self.kafka_peers.running():
            self.kafka_peers.create_proxies()
        self._create_sentinel_proxy()

    def _launch(self, name: str) -> None:
        executor = self.servers[name].executor()
        self.executors[name] = executor
        executor.start()

    # -- stop -------------------------------------------------------------------------------
    def _stop(self) -> None:
        problems: list[str] = []
        for replica in self.replicas.values():
            if replica.executor is not None:
                replica.executor.kill()
            replica.toxiproxy.close()
        self.replicas.clear()
        if self.standby is not None and self.standby.executor is not None:
            self.standby.executor.kill()
            self.standby.toxiproxy.close()
        self.standby = None
        self.fenced.clear()
        if self.kafka_peers is not None:
            self.kafka_peers.stop()
            self.kafka_peers.toxiproxy.close()
            self.kafka_peers = None
        self._stop_sentinel()
        for name in ("kafka", "redis", "postgres", "toxiproxy"):
            executor = self.executors.pop(name, None)
            if executor is None:
                continue
            try:
                if name in self.frozen:
                    self._signal(executor, signal.SIGCONT)
                # Throwaway data: SIGKILL to the process group is the fastest sure teardown.
                executor.kill()
            except OSError as exc:
                problems.append(f"{name}: {exc}")
        self.frozen.clear()
        if self.workdir is not None:
            try:
                remove_tree(self.workdir)
                RECORDER.directory(self.workdir, add=False)
            except OSError as exc:
                problems.append(f"removing {self.workdir}: {exc}")
            self.workdir = None
        if problems:
            raise HarnessError("local backend teardown: " + "; ".join(problems))

    # -- process faults ------------------------------------------------------------------------
    def _executor(self, service: str) -> ServiceExecutor:
        if service not in SERVICES:
            raise UnknownServiceError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
        executor = self.executors.get(service)
        if executor is None:
            raise HarnessError(f"{service} is not running")
        return executor

    @staticmethod
    def _signal(executor: ServiceExecutor, sig: int) -> None:
        if executor.process is not None:
            os.killpg(executor.process.pid, sig)

    def kill_service(self, service: str) -> None:
        executor = self._executor(service)
        if service in self.frozen:
            self._signal(executor, signal.SIGCONT)
            self.frozen.discard(service)
        executor.kill()
        del self.executors[service]

    def stop_service(self, service: str) -> None:
        executor = self._executor(service)
        if service in self.frozen:
            self._signal(executor, signal.SIGCONT)
            self.frozen.discard(service)
        executor.stop()
        del self.executors[service]

    def start_service(self, service: str) -> None:
        if service not in self.servers:
            raise UnknownServiceError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
        if service in self.executors and self.executors[service].running():
            raise HarnessError(f"{service} is already running")
        self._launch(service)
        if service == "toxiproxy":
            self._create_proxies()

    movable = frozenset({"kafka"})

    tools = frozenset({"kafka-configs", "pg_rewind"})
    files = frozenset({"redis", "postgres", "kafka"})

    def service_data_dir(self, service: str) -> Path:
        if service not in self.servers:
            raise UnknownServiceError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
        return self.servers[service].root

    def kafka_configs(self, args: list[str]) -> str:
        kafka = self.servers["kafka"]
        assert isinstance(kafka, KafkaServer)
        return kafka.config_command(args)

    def start_service_moved(self, service: str) -> None:
        if service not in self.movable:
            raise HarnessError(f"the local backend moves only {', '.join(sorted(self.movable))}, not {service}")
        kafka = self.servers["kafka"]
        assert isinstance(kafka, KafkaServer)
        if "kafka" in self.executors:
            raise HarnessError("stop kafka before moving it")
        kafka.port, kafka.direct_port = free_port(), free_port()  # the controller stays: same quorum
        kafka.write_properties()
        self._launch("kafka")
        client = ToxiproxyClient(HOST, self.servers["toxiproxy"].port)
        try:
            client.proxy("kafka").set_upstream(f"{HOST}:{kafka.port}")
        finally:
            client.close()
        if self._stack is not None:
            self._stack.kafka = Link("kafka", Endpoint(HOST, kafka.direct_port), self._stack.kafka.proxied)

    def wipe_service_data(self, service: str) -> None:
        if service != "redis":
            raise HarnessError(f"wiping data is supported for redis only, not {service}")
        if service in self.executors:
            raise HarnessError("stop or kill redis before wiping its data")
        server = self.servers["redis"]
        for path in server.root.iterdir():
            if path != server.log_path:
                remove_tree(path) if path.is_dir() else path.unlink()

    def freeze_service(self, service: str) -> None:
        self._signal(self._executor(service), signal.SIGSTOP)
        self.frozen.add(service)

    def thaw_service(self, service: str) -> None:
        self._signal(self._executor(service), signal.SIGCONT)
        self.frozen.discard(service)

    def ensure_running(self) -> None:
        for service in list(self.frozen):
            self.thaw_service(service)
        for service in ("toxiproxy", "postgres", "redis", "kafka"):
            if service in self.fenced:
                continue  # an old primary a failover stopped stays down until the topology is put away
            executor = self.executors.get(service)
            if executor is not None and not executor.running():
                # It died under a test: collect it, then start it again.
                executor.kill()
                del self.executors[service]
            if service not in self.executors:
                self.start_service(service)
        self._ensure_sentinel()
