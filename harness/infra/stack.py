"""The one place that knows every endpoint of a running stack, direct and proxied."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from harness.errors import UnknownServiceError
from harness.infra.credentials import ExporterCredentials, provision
from harness.infra.toxiproxy import ProxyHandle, ToxiproxyClient

# The links the exporter uses; each one has a Toxiproxy proxy of the same name.
LINKS = ("postgres", "redis", "kafka")
SERVICES = (*LINKS, "toxiproxy")
SENTINEL_SERVICE = "faultline"  # the name a Sentinel the harness runs monitors the Redis primary by


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Link:
    """A service the exporter talks to: where it really is, and where its proxy listens."""

    name: str
    direct: Endpoint
    proxied: Endpoint

    def endpoint(self, proxied: bool) -> Endpoint:
        return self.proxied if proxied else self.direct


class ServiceControl(Protocol):
    """What a stack asks of the backend that started it (harness.backends.base.Backend): its
    servers' processes and data. A protocol, so that the stack (below) never imports the backends
    (above)."""

    name: str

    def ensure_running(self) -> None: ...
    def kill_service(self, service: str) -> None: ...
    def stop_service(self, service: str) -> None: ...
    def start_service(self, service: str) -> None: ...
    def start_service_moved(self, service: str) -> None: ...
    def freeze_service(self, service: str) -> None: ...
    def thaw_service(self, service: str) -> None: ...
    def wipe_service_data(self, service: str) -> None: ...
    def service_data_dir(self, service: str) -> Path: ...
    def kafka_configs(self, args: list[str]) -> str: ...
    def unsupported(self, step_do: object) -> str | None: ...
    def start_replica(self, service: str) -> dict[str, Any]: ...
    def cut_replication(self, service: str, cut: bool) -> None: ...
    def fail_over(self, service: str, planned: bool = False) -> dict[str, Any]: ...
    def rejoin_old_primary(self, service: str) -> dict[str, Any]: ...
    def restore_topology(self) -> None: ...
    def topology(self) -> dict[str, Any]: ...
    def replication_lag(self, service: str) -> float | None: ...
    def kill_broker(self, node: int) -> None: ...
    def start_broker(self, node: int) -> None: ...
    def cut_broker_replication(self, node: int, cut: bool) -> None: ...


@dataclass
class Stack:
    backend: ServiceControl = field(repr=False)
    postgres: Link
    redis: Link
    kafka: Link
    toxiproxy_api: Endpoint
    postgres_user: str
    postgres_password: str = field(repr=False)
    postgres_database: str
    redis_password: str = field(repr=False)
    workdir: Path
    start_seconds: dict[str, float] = field(default_factory=dict)
    # The exporter's own role, ACL user and client id; None: it shares the harness's (then a
    # fault aimed at the exporter's credentials cannot be made, and is skipped with the reason).
    exporter: ExporterCredentials | None = field(default=None, repr=False)
    # Where clients ask a Sentinel for the Redis primary (its proxy), when one runs (a target whose
    # redis_discovery is "sentinel").
    redis_sentinel: Endpoint | None = None
    # Administrator access per server for service faults (CONFIG SET, ALTER ROLE, topic configs):
    # the harness's own direct credentials unless a backend says otherwise (external: only what
    # its settings name; a server missing here cannot be faulted and the step is skipped).
    admin: dict[str, str] | None = field(default=None, repr=False)

    def link(self, name: str) -> Link:
        if name not in LINKS:
            raise UnknownServiceError(f"unknown link {name!r}; links are {', '.join(LINKS)}")
        return getattr(self, name)

    # -- connection strings -------------------------------------------------------------
    def postgres_dsn(self, proxied: bool = True) -> str:
        ep = self.postgres.endpoint(proxied)
        return (f"postgresql://{quote(self.postgres_user)}:{quote(self.postgres_password)}"
                f"@{ep.host}:{ep.port}/{quote(self.postgres_database)}")

    def redis_url(self, proxied: bool = True) -> str:
        ep = self.redis.endpoint(proxied)
        return f"redis://:{quote(self.redis_password)}@{ep.host}:{ep.port}/0"

    def kafka_bootstrap(self, proxied: bool = True) -> str:
        return self.kafka.endpoint(proxied).address

    # -- the exporter's connection strings (its own credentials when it has them) -------------
    def exporter_postgres_dsn(self, proxied: bool = True) -> str:
        if self.exporter is None:
            return self.postgres_dsn(proxied)
        ep = self.postgres.endpoint(proxied)
        return (f"postgresql://{quote(self.exporter.postgres_user)}:{quote(self.exporter.postgres_password)}"
                f"@{ep.host}:{ep.port}/{quote(self.postgres_database)}")

    def exporter_redis_url(self, proxied: bool = True) -> str:
        if self.exporter is None:
            return self.redis_url(proxied)
        ep = self.redis.endpoint(proxied)
        return f"redis://{quote(self.exporter.redis_user)}:{quote(self.exporter.redis_password)}@{ep.host}:{ep.port}/0"

    def admin_url(self, service: str) -> str:
        """Where to reach ``service`` as its administrator (direct, never through the proxy)."""
        if self.admin is not None:
            if service not in self.admin:
                raise UnknownServiceError(f"no administrator access to {service} on this stack")
            return self.admin[service]
        return {"postgres": self.postgres_dsn(proxied=False), "redis": self.redis_url(proxied=False),
                "kafka": self.kafka_bootstrap(proxied=False)}[service]

    @property
    def kafka_client_id(self) -> str:
        return self.exporter.kafka_client_id if self.exporter is not None else "faultline-exporter"

    # -- faults -----------------------------------------------------------------------------
    @cached_property
    def toxiproxy(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.toxiproxy_api.host, self.toxiproxy_api.port)

    def proxy(self, link: str) -> ProxyHandle:
        return self.toxiproxy.proxy(self.link(link).name)

    def reset(self, *, topology: bool = True) -> None:
        """Between tests: every service running and unfrozen, every toxic gone, every link up, and
        (``topology``) one node per server again, the original ones serving. Healing a scenario
        keeps its topology: a failover is not undone by healing, the new primary stays."""
        self.backend.ensure_running()
        if topology:
            self.backend.restore_topology()
        self.toxiproxy.reset()
        provision(self)  # the exporter's rights back in full (a fault may have taken some away)

    # -- process faults (delegated to the backend) -----------------------------------------
    def kill(self, service: str) -> None:
        self.backend.kill_service(service)

    def stop(self, service: str) -> None:
        self.backend.stop_service(service)

    def start(self, service: str) -> None:
        self.backend.start_service(service)

    def restart(self, service: str, *, kill: bool = False) -> None:
        (self.backend.kill_service if kill else self.backend.stop_service)(service)
        self.backend.start_service(service)

    def freeze(self, service: str) -> None:
        self.backend.freeze_service(service)

    def thaw(self, service: str) -> None:
        self.backend.thaw_service(service)

    def describe(self) -> dict[str, Any]:
        """Endpoints as JSON-ready data (no secrets)."""
        return {
            "backend": self.backend.name,
            "workdir": str(self.workdir),
            "toxiproxy_api": self.toxiproxy_api.address,
            "links": {name: {"direct": self.link(name).direct.address,
                             "proxied": self.link(name).proxied.address} for name in LINKS},
            "postgres": {"user": self.postgres_user, "database": self.postgres_database},
            "start_seconds": {k: round(v, 3) for k, v in self.start_seconds.items()},
        }
