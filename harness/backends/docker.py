"""Docker backend on testcontainers: the same Stack as the local backend, servers in containers.

All four containers share one Docker network; Toxiproxy reaches the servers by their network
aliases. Host ports are chosen up front (``with_bind_ports``) so Kafka can advertise the
Toxiproxy port before either container exists, exactly as the local backend does.
"""

from __future__ import annotations

import shlex
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.backends.base import Backend
from harness.errors import HarnessError, ServiceStartError, UnknownServiceError
from harness.infra.credentials import ExporterCredentials, provision
from harness.infra.stack import LINKS, SERVICES, Endpoint, Link, Stack
from harness.infra.toxiproxy import ToxiproxyClient
from harness.services import probes
from harness.services.executor import free_port
from harness.services.servers import HOST, kafka_config_command, random_secret

# Pinned images: a gate whose servers change under it is not a gate.
IMAGES = {
    "postgres": "postgres:15.10",
    "redis": "redis:7.0.15",
    "kafka": "apache/kafka:3.9.1",
    "toxiproxy": "ghcr.io/shopify/toxiproxy:2.12.0",
}
PROXY_CONTAINER_PORTS = {"postgres": 8666, "redis": 8667, "kafka": 8668}
TOXIPROXY_API_PORT = 8474


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers, and why not when it does not."""
    try:
        import docker
    except ImportError:
        return False, "testcontainers is not installed (pip install 'faultline[docker]')"
    try:
        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - docker-py raises several unrelated types for "no engine"
        return False, f"no Docker engine answers: {exc.__class__.__name__}: {exc}"
    return True, "ok"


def kafka_env(direct_port: int, proxied_port: int) -> dict[str, str]:
    """A one-node KRaft broker whose proxied clients are sent back to the Toxiproxy port on the
    host, never around it."""
    return {
        "KAFKA_NODE_ID": "1", "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,DIRECT://0.0.0.0:9094,CONTROLLER://0.0.0.0:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{HOST}:{proxied_port},DIRECT://{HOST}:{direct_port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,DIRECT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER", "KAFKA_INTER_BROKER_LISTENER_NAME": "DIRECT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1", "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }


class DockerBackend(Backend):
    name = "docker"
    # kafka-configs runs from the jars `faultline setup` installed, against the broker's host port.
    tools = frozenset({"kafka-configs"})
    protocol_proxies = False  # Toxiproxy runs in a container: the harness's loopback is not its own

    def kafka_configs(self, args: list[str]) -> str:
        stack = self.stack
        return kafka_config_command(stack.kafka_bootstrap(proxied=False), args, Path(tempfile.gettempdir()))

    def __init__(self, *, start_timeout: float = 120.0) -> None:
        super().__init__()
        self.start_timeout = start_timeout
        self.containers: dict[str, Any] = {}
        self.network: Any = None

    def _start(self) -> Stack:
        ok, why = docker_available()
        if not ok:
            raise HarnessError(f"docker backend: {why}")
        from testcontainers.core.network import Network

        began = time.monotonic()
        pg_password, redis_password = random_secret(), random_secret()
        self.exporter = ExporterCredentials()
        host_ports = {name: free_port() for name in ("postgres", "redis", "kafka", "toxiproxy")}
        proxy_ports = {link: free_port() for link in LINKS}
        self.network = Network().__enter__()

        self.containers = self._containers(host_ports, proxy_ports, pg_password, redis_password)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda c: c.start(), self.containers.values()))

        self._ready = {
            "toxiproxy": lambda: probes.toxiproxy_ready(HOST, host_ports["toxiproxy"]),
            "postgres": lambda: probes.postgres_ready(HOST, host_ports["postgres"], "faultline", pg_password,
                                                      "faultline"),
            "redis": lambda: probes.redis_ready(HOST, host_ports["redis"], redis_password),
            "kafka": lambda: probes.kafka_ready(f"{HOST}:{host_ports['kafka']}"),
        }
        for service in SERVICES:
            self._wait_ready(service)
        self._proxy_ports = proxy_ports
        self._create_proxies(host_ports["toxiproxy"])
        stack = Stack(
            backend=self,
            postgres=Link("postgres", Endpoint(HOST, host_ports["postgres"]), Endpoint(HOST, proxy_ports["postgres"])),
            redis=Link("redis", Endpoint(HOST, host_ports["redis"]), Endpoint(HOST, proxy_ports["redis"])),
            kafka=Link("kafka", Endpoint(HOST, host_ports["kafka"]), Endpoint(HOST, proxy_ports["kafka"])),
            toxiproxy_api=Endpoint(HOST, host_ports["toxiproxy"]),
            postgres_user="faultline", postgres_password=pg_password, postgres_database="faultline",
            redis_password=redis_password, workdir=Path("/"),
            start_seconds={"total": time.monotonic() - began}, exporter=self.exporter,
        )
        provision(stack)
        return stack

    def _containers(self, host_ports: dict[str, int], proxy_ports: dict[str, int], pg_password: str,
                    redis_password: str) -> dict[str, Any]:
        """The four containers on one network, each port bound to a free port on the host."""
        from testcontainers.core.container import DockerContainer

        toxiproxy = (DockerContainer(IMAGES["toxiproxy"]).with_network(self.network)
                     .with_network_aliases("toxiproxy")
                     .with_bind_ports(TOXIPROXY_API_PORT, host_ports["toxiproxy"]))
        for link in LINKS:
            toxiproxy = toxiproxy.with_bind_ports(PROXY_CONTAINER_PORTS[link], proxy_ports[link])
        postgres = (DockerContainer(IMAGES["postgres"]).with_network(self.network)
                    .with_network_aliases("postgres").with_bind_ports(5432, host_ports["postgres"])
                    .with_env("POSTGRES_USER", "faultline").with_env("POSTGRES_PASSWORD", pg_password)
                    .with_env("POSTGRES_DB", "faultline").with_command(" ".join(["postgres", "-c", "fsync=off", *(
                        f"-c {s}" for s in self.postgres_settings())])))
        redis = (DockerContainer(IMAGES["redis"]).with_network(self.network).with_network_aliases("redis")
                 .with_bind_ports(6379, host_ports["redis"])
                 .with_command(f"redis-server --requirepass {redis_password} --appendonly yes "
                               + " ".join(shlex.quote(word) for word in self.exporter.redis_user_directive())))
        kafka = (DockerContainer(IMAGES["kafka"]).with_network(self.network).with_network_aliases("kafka")
                 .with_bind_ports(9094, host_ports["kafka"]))
        for key, value in kafka_env(host_ports["kafka"], proxy_ports["kafka"]).items():
            kafka = kafka.with_env(key, value)
        return {"toxiproxy": toxiproxy, "postgres": postgres, "redis": redis, "kafka": kafka}

    def _create_proxies(self, api_port: int) -> None:
        client = ToxiproxyClient(HOST, api_port)
        upstream_ports = {"postgres": 5432, "redis": 6379, "kafka": 9092}
        try:
            for link in LINKS:
                client.create_proxy(link, f"0.0.0.0:{PROXY_CONTAINER_PORTS[link]}", f"{link}:{upstream_ports[link]}")
        finally:
            client.close()

    def _wait_ready(self, service: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                if self._ready[service]():
                    return
            except Exception as exc:  # noqa: BLE001 - servers refuse in their own ways while booting; kept for the error
                last = exc
            time.sleep(0.2)
        raise ServiceStartError(service, f"container not ready after {self.start_timeout:.0f}s; last: {last!r}")

    def _stop(self) -> None:
        problems = []
        for name, container in list(self.containers.items()):
            try:
                container.stop()
            except Exception as exc:  # noqa: BLE001 - report every container that would not stop, then raise
                problems.append(f"{name}: {exc}")
        self.containers.clear()
        if self.network is not None:
            self.network.remove()
            self.network = None
        if problems:
            raise HarnessError("docker backend teardown: " + "; ".join(problems))

    def _container(self, service: str) -> Any:
        if service not in self.containers:
            raise UnknownServiceError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
        return self.containers[service].get_wrapped_container()

    def kill_service(self, service: str) -> None:
        self._container(service).kill()

    def stop_service(self, service: str) -> None:
        self._container(service).stop(timeout=10)

    def start_service(self, service: str) -> None:
        self._container(service).start()
        self._wait_ready(service)
        if service == "toxiproxy":
            self._create_proxies(self.stack.toxiproxy_api.port)

    def wipe_service_data(self, service: str) -> None:
        if service != "redis":
            raise HarnessError(f"wiping data is supported for redis only, not {service}")
        # The container is stopped and files can only be removed from inside it: start it, delete
        # its persistence files, and kill it so nothing in memory is written back.
        container = self._container(service)
        container.start()
        container.exec_run(["sh", "-c", "rm -rf /data/*"])
        container.kill()

    def freeze_service(self, service: str) -> None:
        self._container(service).pause()

    def thaw_service(self, service: str) -> None:
        self._container(service).unpause()

    def ensure_running(self) -> None:
        for service in SERVICES:
            container = self._container(service)
            container.reload()
            if container.status == "paused":
                container.unpause()
            elif container.status != "running":
                self.start_service(service)
