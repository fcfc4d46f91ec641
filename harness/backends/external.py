"""External backend: the user's own Postgres, Redis and Kafka (a staging environment).

Faultline starts only Toxiproxy (a local child process) with one proxy per link in front of the
given servers, and runs everything else as usual; every table, stream and topic it creates is
namespaced per scenario, so nothing of the environment's own data is touched. It does not own
the servers, so it cannot stop, kill, freeze or wipe them: a scenario that needs that is
skipped with the reason.

Kafka clients connect to the addresses the broker advertises, not to the bootstrap address.
Unless the broker advertises the proxy's address (give ``kafka_proxy_port`` and configure the
listener to match), the exporter bypasses the proxy after bootstrap; the backend detects that
and refuses Kafka link faults rather than report a pass for a fault that never reached the link.

Configuration: a TOML file named by ``FAULTLINE_EXTERNAL``::

    postgres_dsn = "postgresql://user:password@db.staging:5432/app"
    redis_url = "redis://:password@redis.staging:6379/0"
    kafka_bootstrap = "kafka.staging:9092"
    kafka_proxy_port = 19092   # optional: a fixed port the broker can advertise
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.backends.base import Backend
from harness.errors import HarnessError
from harness.infra.kafka_clients import kafka_config
from harness.infra.stack import LINKS, Endpoint, Link, Stack
from harness.infra.toxiproxy import ToxiproxyClient
from harness.model.capabilities import Need, NeedKind
from harness.model.tomlfile import Locator, parse, read_text
from harness.services import probes
from harness.services.executor import ServiceExecutor, free_port
from harness.services.servers import HOST, ToxiproxyServer, remove_tree

CONFIG_ENV = "FAULTLINE_EXTERNAL"


class ExternalBackendError(HarnessError):
    """The external environment is misconfigured or cannot do what a scenario asks."""


class UnsupportedByBackend(ExternalBackendError):
    """A step this backend cannot perform (a scenario that needs it is skipped, with this reason)."""


ADMIN_KEYS = {"postgres_admin": "postgres", "redis_admin": "redis", "kafka_admin": "kafka"}


@dataclass(frozen=True)
class ExternalConfig:
    postgres_dsn: str
    redis_url: str
    kafka_bootstrap: str
    kafka_proxy_port: int | None = None
    # Administrator access for service faults, per server (a DSN, URL or bootstrap): a server not
    # named here is never reconfigured, and its service faults are skipped with the reason.
    admin: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(cls, path: str | None = None) -> ExternalConfig:
        path = path or os.environ.get(CONFIG_ENV)
        if not path:
            raise ExternalBackendError(f"the external backend needs {CONFIG_ENV} set to a TOML file with "
                                       "postgres_dsn, redis_url and kafka_bootstrap (see harness/backends/external.py)")
        what = f"external backend settings ({CONFIG_ENV})"
        text = read_text(path, what, ExternalBackendError)
        where = Locator(text)
        try:
            settings = _Settings.model_validate(parse(text, path, what, ExternalBackendError))
        except ValidationError as exc:
            said = [(".".join(str(x) for x in e["loc"]), e["msg"], e.get("input")) for e in exc.errors()]
            line = next((n for key, _msg, _given in said if (n := where.key(key))), "?")  # a missing key has none
            raise ExternalBackendError(f"{path}:{line}: " + "; ".join(
                f"{key}: {msg}" + ("" if msg == "Field required" else f" (got {repr(given)[:80]})")
                for key, msg, given in said)) from exc
        for key, default in (("postgres_dsn", 5432), ("redis_url", 6379), ("kafka_bootstrap", 9092)):
            value = getattr(settings, key)
            for one in value.split(",") if key == "kafka_bootstrap" else [value]:
                try:
                    _host_port(key, one, default)
                except ExternalBackendError as exc:
                    raise ExternalBackendError(f"{path}:{where.key(key) or '?'}: {exc}") from exc
        return cls(settings.postgres_dsn, settings.redis_url, settings.kafka_bootstrap, settings.kafka_proxy_port,
                   tuple((service, admin) for key, service in ADMIN_KEYS.items()
                         if (admin := getattr(settings, key)) is not None))


_Address = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Settings(BaseModel):
    """The file's keys and their types: a port of "abc" or an unknown key is refused at load."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    postgres_dsn: _Address
    redis_url: _Address
    kafka_bootstrap: _Address
    kafka_proxy_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    postgres_admin: _Address | None = None
    redis_admin: _Address | None = None
    kafka_admin: _Address | None = None


def _host_port(where: str, text: str, default_port: int) -> Endpoint:
    parts = urlsplit(text if "//" in text else f"//{text}")
    try:
        port = parts.port
    except ValueError as exc:  # "host:abc", or a port past 65535
        raise ExternalBackendError(f"{where}: cannot read a port from {text!r}: {exc}") from exc
    if not parts.hostname:
        raise ExternalBackendError(f"{where}: cannot read a host from {text!r}")
    return Endpoint(parts.hostname, port or default_port)


class ExternalBackend(Backend):
    name = "external"

    def __init__(self, config: ExternalConfig | None = None, *, start_timeout: float = 60.0) -> None:
        super().__init__()
        self.config = config or ExternalConfig.load()
        self.start_timeout = start_timeout
        self.workdir: Path | None = None
        self.toxiproxy: ToxiproxyServer | None = None
        self.executor: ServiceExecutor | None = None
        self.upstreams: dict[str, Endpoint] = {}
        self.proxy_ports: dict[str, int] = {}
        self.bypassed: dict[str, str] = {}  # link -> why a fault on it would not reach it

    def _start(self) -> Stack:
        began = time.monotonic()
        pg, rd = urlsplit(self.config.postgres_dsn), urlsplit(self.config.redis_url)
        self.upstreams = {"postgres": _host_port("postgres_dsn", self.config.postgres_dsn, 5432),
                          "redis": _host_port("redis_url", self.config.redis_url, 6379),
                          "kafka": _host_port("kafka_bootstrap", self.config.kafka_bootstrap.split(",")[0], 9092)}
        self.workdir = Path(tempfile.mkdtemp(prefix="faultline-external-"))
        self.proxy_ports = {link: free_port() for link in LINKS}
        if self.config.kafka_proxy_port:
            self.proxy_ports["kafka"] = self.config.kafka_proxy_port
        self.toxiproxy = ToxiproxyServer("toxiproxy", self.workdir / "toxiproxy", free_port(),
                                         start_timeout=self.start_timeout)
        self.toxiproxy.prepare()
        self._launch_toxiproxy()
        stack = Stack(
            backend=self,
            postgres=self._link("postgres"), redis=self._link("redis"), kafka=self._link("kafka"),
            toxiproxy_api=Endpoint(HOST, self.toxiproxy.port),
            postgres_user=unquote(pg.username or ""), postgres_password=unquote(pg.password or ""),
            postgres_database=(pg.path or "/postgres").lstrip("/") or "postgres",
            redis_password=unquote(rd.password or ""), workdir=self.workdir,
            start_seconds={"toxiproxy": time.monotonic() - began}, admin=dict(self.config.admin))
        self._check_links(stack)
        stack.start_seconds["total"] = time.monotonic() - began
        return stack

    def _link(self, name: str) -> Link:
        return Link(name, self.upstreams[name], Endpoint(HOST, self.proxy_ports[name]))

    def _launch_toxiproxy(self) -> None:
        assert self.toxiproxy is not None
        self.executor = self.toxiproxy.executor()
        self.executor.start()
        client = ToxiproxyClient(HOST, self.toxiproxy.port)
        try:
            for link in LINKS:
                client.create_proxy(link, f"{HOST}:{self.proxy_ports[link]}", self.upstreams[link].address)
        finally:
            client.close()

    def _check_links(self, stack: Stack) -> None:
        """Every server answers through its proxy; Kafka's advertised brokers go through it too."""
        checks = {
            "postgres": lambda: probes.postgres_ready(HOST, self.proxy_ports["postgres"], stack.postgres_user,
                                                      stack.postgres_password, stack.postgres_database),
            "redis": lambda: probes.redis_ready(HOST, self.proxy_ports["redis"], stack.redis_password),
            "kafka": lambda: probes.kafka_ready(stack.kafka_bootstrap(proxied=True)),
        }
        down = [link for link, check in checks.items() if not check()]
        if down:
            raise ExternalBackendError(
                f"external backend: {', '.join(f'{link} at {self.upstreams[link].address}' for link in down)} "
                "did not answer through its proxy; check the addresses and credentials in "
                f"{os.environ.get(CONFIG_ENV, 'the configuration')}")
        from confluent_kafka.admin import AdminClient

        metadata = AdminClient(kafka_config(stack.kafka_bootstrap(proxied=True))).list_topics(timeout=15)
        proxy = stack.kafka.proxied
        advertised = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
        if any(address != proxy.address and address != f"localhost:{proxy.port}" for address in advertised):
            self.bypassed["kafka"] = (
                f"the Kafka broker advertises {', '.join(advertised)}, so after bootstrap the exporter connects "
                f"there directly and a fault on the kafka link would never reach it; configure the broker's "
                f"advertised listener as {proxy.address} (and set kafka_proxy_port = {proxy.port})")

    def _stop(self) -> None:
        if self.executor is not None:
            self.executor.kill()
            self.executor = None
        if self.workdir is not None:
            remove_tree(self.workdir)
            self.workdir = None

    # -- what it cannot do: the servers are not ours -----------------------------------------
    def _not_ours(self, what: str, service: str) -> UnsupportedByBackend:
        return UnsupportedByBackend(f"the external backend cannot {what} {service}: Faultline does not own that "
                                    "server (use the local or docker backend for process faults)")

    def kill_service(self, service: str) -> None:
        raise self._not_ours("kill", service)

    def stop_service(self, service: str) -> None:
        raise self._not_ours("stop", service)

    def start_service(self, service: str) -> None:
        raise self._not_ours("start", service)

    def freeze_service(self, service: str) -> None:
        raise self._not_ours("freeze", service)

    def thaw_service(self, service: str) -> None:
        raise self._not_ours("thaw", service)

    def wipe_service_data(self, service: str) -> None:
        raise self._not_ours("wipe the data of", service)

    def ensure_running(self) -> None:
        if self.executor is None or not self.executor.running():
            if self.executor is not None:
                self.executor.kill()
            self._launch_toxiproxy()

    def lacks(self, capability: Need) -> str | None:
        """Servers it does not own cannot be stopped; links the broker advertises around the
        proxy cannot be faulted."""
        kind, name = capability.kind, capability.name
        if kind is NeedKind.RESTART:
            return str(self._not_ours("restart", name))
        if kind is NeedKind.LINK and name in self.bypassed:
            return self.bypassed[name]
        return super().lacks(capability)
