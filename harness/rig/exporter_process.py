"""A running exporter, started from its target definition (harness.model.target): the values its
placeholders are filled with for one run (``RunContext``) and the process itself, restartable,
killable and freezable, with its metrics, JSON log lines and authenticated HTTP API."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict

from harness.errors import HarnessError
from harness.infra.stack import SENTINEL_SERVICE, Stack
from harness.model.api_tokens import HARNESS_USER, ApiTokens
from harness.model.target import DEFECT_ENV, ERROR_COUNTERS, TargetDefinition, TargetError
from harness.paths import in_checkout, project_root
from harness.services.executor import ServiceExecutor, free_port


class MetricsUnavailable(HarnessError):
    """The exporter's metrics endpoint did not give valid Prometheus text this time."""




@dataclass
class RunContext:
    """The values a target definition's placeholders are filled with."""

    stack: Stack
    namespace: str
    workdir: Path
    http_port: int = field(default_factory=free_port)
    tokens: ApiTokens = field(default_factory=ApiTokens.generate)
    components: dict[str, str] = field(default_factory=dict)  # {java}, {debezium_libs}: what the target requires

    def __post_init__(self) -> None:
        # Absolute: the target's process runs from elsewhere (found by the CI recipe's test: with
        # `--out reports/gate` the exporter was told of a tokens file it could not find).
        self.workdir = Path(self.workdir).resolve()

    @property
    def api_tokens_file(self) -> Path:
        return self.workdir / "api-tokens.toml"

    @property
    def source_table(self) -> str:
        return f"{self.namespace}_source"

    @property
    def topic(self) -> str:
        return f"{self.namespace}-out"

    def values(self) -> dict[str, str]:
        # The exporter's own credentials: the harness reads with the administrator's.
        dsn = conninfo_to_dict(self.stack.exporter_postgres_dsn(proxied=True))
        return {**{f"postgres_{part}": str(dsn.get(name, "")) for part, name in (
                    ("host", "host"), ("port", "port"), ("user", "user"), ("password", "password"),
                    ("database", "dbname"))},
                **self.components,
                "postgres_dsn": self.stack.exporter_postgres_dsn(proxied=True),
                "redis_url": self.stack.exporter_redis_url(proxied=True), **self.redis_parts(),
                **self.sentinel_values(),
                "kafka_bootstrap": self.stack.kafka_bootstrap(proxied=True),
                "kafka_client_id": self.stack.kafka_client_id, "http_port": str(self.http_port),
                "namespace": self.namespace, "source_table": self.source_table, "topic": self.topic,
                "workdir": str(self.workdir), "python": sys.executable,
                "api_tokens_file": str(self.api_tokens_file)}

    def redis_parts(self) -> dict[str, str]:
        """``{redis_url}``'s parts, for a target configured by address and credentials apart
        (Debezium Server's Redis sink)."""
        url = urlsplit(self.stack.exporter_redis_url(proxied=True))
        return {"redis_host": url.hostname or "", "redis_port": str(url.port or 6379),
                "redis_user": unquote(url.username or "") or "default", "redis_password": unquote(url.password or "")}

    def sentinel_values(self) -> dict[str, str]:
        """Where the Sentinel is and the name it monitors the primary by, when the stack runs one."""
        if self.stack.redis_sentinel is None:
            return {}
        return {"redis_sentinels": self.stack.redis_sentinel.address, "redis_sentinel_service": SENTINEL_SERVICE}

    def fill(self, template: str, env: dict[str, str] | None = None) -> str:
        """The template with placeholders filled; ``env``: the exporter's environment, as
        ``{env[NAME]}`` (a file the target writes can carry a knob's value)."""
        try:
            return template.format(**self.values(), env=env or {})
        except KeyError as exc:
            raise TargetError(f"unknown placeholder {exc} in target definition value {template!r}") from exc


def required_components(target: TargetDefinition) -> dict[str, str]:
    """Placeholders for what the target requires, installed first when missing: ``{java}``; for
    ``requires.debezium``, ``{debezium_libs}`` (the worker's class path directory); for
    ``requires.debezium-server``, ``{debezium_server}`` (the unpacked distribution), and ``{java}``
    a Java 21 runtime (its classes need one)."""
    if not target.requires:
        return {}
    from harness.provision import Debezium, DebeziumServer, ensure, require
    from harness.provision.debezium_server import Java21

    found = {"java": require("java").path}
    if "debezium" in target.requires:
        found["debezium_libs"] = ensure(Debezium(target.requires["debezium"]), log=lambda _m: None).path
    if "debezium-server" in target.requires:
        found["debezium_server"] = ensure(DebeziumServer(target.requires["debezium-server"]), log=lambda _m: None).path
        found["java"] = ensure(Java21(), log=lambda _m: None).path
    return found


class ExporterProcess:
    """One running exporter, started from its target definition; restartable, killable, freezable."""

    def __init__(self, target: TargetDefinition, ctx: RunContext, *, extra_env: dict[str, str] | None = None,
                 start_timeout: float = 60.0) -> None:
        self.target = target
        self.ctx = ctx
        self.extra_env = extra_env or {}
        self.start_timeout = start_timeout
        self.log_path = ctx.workdir / "exporter.log"
        self.executor: ServiceExecutor | None = None
        self.starts = 0
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{ctx.http_port}", timeout=30)

    def sink(self, name: str) -> str:
        return self.ctx.fill(self.target.sinks[name])

    def environment(self) -> dict[str, str]:
        env = {key: self.ctx.fill(value) for key, value in self.target.env.items()}
        # The seeded defect is passed through from Faultline's own environment, never read here.
        if DEFECT_ENV in os.environ:
            env[DEFECT_ENV] = os.environ[DEFECT_ENV]
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.ctx.workdir.mkdir(parents=True, exist_ok=True)
        self.ctx.tokens.write(self.ctx.api_tokens_file)
        self.ctx.components = required_components(self.target)
        environment = self.environment()
        for name, template in self.target.files.items():
            (self.ctx.workdir / name).write_text(self.ctx.fill(template, environment))
        command = [self.ctx.fill(part) for part in self.target.command]
        self.executor = ServiceExecutor(
            "exporter", command, host="127.0.0.1", port=self.ctx.http_port, log_path=self.log_path,
            # Its command runs from the checkout, or, installed from a wheel, from where the user is.
            timeout=self.start_timeout, cwd=str(project_root() if in_checkout() else Path.cwd()), envvars=environment,
            ready=self._ready)
        self.executor.start()
        self.starts += 1

    def _ready(self) -> bool:
        answer = self.http.get(self.target.ready_path, timeout=1)
        if answer.status_code != 200 or self.target.ready_body not in answer.text:
            return False
        return self._ready_in_source() if self.target.ready_sql else True

    def _ready_in_source(self) -> bool:
        """The target's ready_sql answers true (asked directly, as the administrator). Postgres
        unreachable is not ready yet; the start's deadline says when waiting is over."""
        try:
            with psycopg.connect(self.ctx.stack.postgres_dsn(proxied=False), connect_timeout=2,
                                 autocommit=True) as conn:
                row = conn.execute(self.ctx.fill(self.target.ready_sql)).fetchone()
        except psycopg.OperationalError:
            return False
        return bool(row and row[0])

    def running(self) -> bool:
        return self.executor is not None and self.executor.running()

    def pid(self) -> int | None:
        """The exporter's main process id while it runs (its workers are its children)."""
        if self.executor is None or self.executor.process is None or not self.executor.running():
            return None
        return self.executor.process.pid

    def exit_code(self) -> int | None:
        if self.executor is None or self.executor.process is None:
            return None
        return self.executor.process.poll()

    def stop(self) -> None:
        if self.executor is not None:
            self.executor.stop()
            self.executor = None

    def kill(self) -> None:
        if self.executor is not None:
            self.executor.kill(sig=signal.SIGKILL)
            self.executor = None

    def freeze(self) -> None:
        assert self.executor and self.executor.process
        os.killpg(self.executor.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.executor and self.executor.process
        os.killpg(self.executor.process.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.executor is not None:
            if self.executor.process is not None and self.executor.running():
                os.killpg(self.executor.process.pid, signal.SIGCONT)
            self.executor.kill()
            self.executor = None
        self.http.close()

    # -- observation -----------------------------------------------------------------------------
    def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """Every sample as ``name{label="v",...}`` -> value (summed over nothing)."""
        response = self.http.get(self.target.metrics_path, timeout=timeout)
        if response.status_code != 200:
            raise MetricsUnavailable(f"exporter {self.target.metrics_path} answered {response.status_code}: "
                                     f"{response.text[:200]}")
        samples: dict[str, float] = {}
        try:
            for family in text_string_to_metric_families(response.text):
                for sample in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        except ValueError as exc:
            raise MetricsUnavailable(f"exporter {self.target.metrics_path} is not Prometheus text: {exc}") from exc
        return samples

    def metric_total(self, key: str, samples: dict[str, float] | None = None) -> float:
        """Sum of a target metric (by its role in [metrics]) over all label values."""
        name = self.target.metrics[key]
        samples = self.metrics() if samples is None else samples
        return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))

    def error_total(self, samples: dict[str, float] | None = None) -> float:
        """Every error counter the target names (``ERROR_COUNTERS``), summed: a fault the exporter
        counted anywhere (a send, a retry, a background pass, a worker restart) reads as surfaced."""
        samples = self.metrics() if samples is None else samples
        return sum(self.metric_total(k, samples) for k in ERROR_COUNTERS if k in self.target.metrics)

    def log_records(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return self.target.log.records(self.log_path.read_text(errors="replace"))

    def auth(self, user: str) -> dict[str, str]:
        return self.ctx.tokens.header(user) if self.target.api_auth == "bearer" else {}

    def post(self, path: str, *, as_user: str = HARNESS_USER, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, headers=self.auth(as_user), **kwargs)

    def get(self, path: str, *, as_user: str = HARNESS_USER, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, headers=self.auth(as_user), **kwargs)

    def healthy(self, timeout: float = 5) -> bool:
        """Its ready path answers 200 now. A process that exited, or answers nothing, is not
        healthy: evidence for the checks, never a harness error (Debezium Server exits when its
        slot is gone after a failover; asking it once made the whole scenario a harness bug)."""
        try:
            return self.get(self.target.ready_path, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False
