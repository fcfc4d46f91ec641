"""The system under test as a black box: a target definition, and a running exporter process.

Faultline never imports the exporter. A target definition (TOML) says how to start it, which
environment to give it, where its HTTP endpoints, sinks, dead letters and metrics are; the
placeholders ``{postgres_dsn}``, ``{redis_url}``, ``{kafka_bootstrap}`` (all proxied; the DSN
and URL carry the exporter's own role and ACL user, never the harness's), ``{kafka_client_id}``,
``{http_port}``, ``{namespace}``, ``{source_table}``, ``{topic}``, ``{workdir}``,
``{api_tokens_file}`` (this run's API tokens, harness.api_tokens) and ``{python}`` are filled per
run, with ``{postgres_host}`` ... ``{postgres_database}`` (the DSN's parts) and, for a target that
``requires`` components, ``{java}`` and ``{debezium_libs}``. ``api_auth = "bearer"`` makes every
request the harness sends carry its token. ARCHITECTURE.md's "Target definitions" lists the rest:
``[record]``, ``[log]``, ``uses``, ``apis``, ``[files]``, ``postgres_logical_replication``, ``delivery``.

``[knobs]`` maps the harness's knobs (delivery timeout, batch size, sink, ...) to the target's own
settings: a scenario names knobs, never a target's variables, so the catalogue runs against any
exporter; a scenario that needs a knob the target lacks is skipped with that reason.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict
from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from harness.api_tokens import HARNESS_USER, ApiTokens
from harness.errors import HarnessError
from harness.knobs import KNOBS
from harness.letters import LetterKind
from harness.log_format import LogFormat
from harness.paths import project_root
from harness.record_format import RecordFormat
from harness.services.executor import ServiceExecutor, free_port
from harness.stack import Stack
from harness.tomlfile import Locator, parse, read_text

DEFECT_ENV = "FAULTLINE_EXPORTER_DEFECT"
BUNDLED = project_root() / "targets" / "bundled-exporter.toml"


class TargetError(HarnessError):
    """A target definition is missing, malformed or incomplete."""


SERVERS = ("postgres", "redis", "kafka")
# The roles in a target's [metrics] that count errors; a target names those it has.
ERROR_COUNTERS = ("send_failures", "retries", "background_failures", "worker_restarts")


class MetricsUnavailable(HarnessError):
    """The exporter's metrics endpoint did not give valid Prometheus text this time."""


_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
_Path = Annotated[str, Field(min_length=1, pattern=r"^/")]


@pydantic_dataclass(frozen=True, config=_STRICT)
class TargetDefinition:
    name: Annotated[str, Field(min_length=1, max_length=200)]
    command: Annotated[list[str], Field(min_length=1)]
    sinks: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # none: metric checks are not applicable, said so
    ready_path: _Path = "/healthz"
    metrics_path: _Path = "/metrics"
    pause_path: _Path = "/pause"
    resume_path: _Path = "/resume"
    exports_path: _Path = "/exports"
    api_auth: Literal["none", "bearer"] = "none"
    defect_env: str = DEFECT_ENV
    defects: tuple[str, ...] = ()
    knobs: dict[str, str] = field(default_factory=dict)  # harness knob -> the target's environment variable
    steps: tuple[str, ...] = ()  # modules of the target's own step kinds, imported when it is loaded
    # What its dead-letter reasons mean, so the harness can check each one (harness.letters).
    dead_letter_reasons: dict[str, LetterKind] = field(default_factory=dict)
    # Records the pipeline may still move after it acknowledged a pause without saying it was
    # drained (a batch in the producer; the bundled exporter says whether it drained).
    pause_in_flight_max: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    # How a record sits in a sink message (harness.record_format); the default is the bundled one's.
    record: RecordFormat = field(default_factory=RecordFormat)
    # How its log is read (harness.log_format): JSON lines (the bundled one's) or a log4j-style pattern.
    log: LogFormat = field(default_factory=LogFormat)
    # The servers the pipeline goes through: a step on a server it does not use is skipped (a
    # connector reading Postgres's WAL straight into Kafka has no Redis buffer).
    uses: tuple[Literal["postgres", "redis", "kafka"], ...] = ("postgres", "redis", "kafka")
    # Files written into the run's directory before each start, placeholders filled (a Kafka
    # Connect worker's and connector's properties, a logging configuration).
    files: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], Annotated[str, Field(max_length=100_000)]] = \
        field(default_factory=dict)
    # Optional components it needs, by version (`faultline setup --with NAME`); installed when missing.
    requires: dict[Literal["debezium"], Annotated[str, Field(pattern=r"^[0-9][A-Za-z0-9.-]*$")]] = field(
        default_factory=dict)
    # How pause and resume are asked: "grace" (POST pause_path?grace=S, answered once paused, with
    # what drained: the bundled exporter) or "connect" (Kafka Connect's REST API: PUT, 202 at once;
    # paused once ``status_path`` says so, polled until the grace runs out).
    pause_protocol: Literal["grace", "connect"] = "grace"
    status_path: _Path = "/status"
    # The HTTP APIs it offers besides readiness: pause/resume with a grace period, export jobs.
    apis: tuple[Literal["pause", "exports"], ...] = ("pause", "exports")
    # Postgres with logical replication (wal_level=logical, slots, senders): a CDC connector's source.
    postgres_logical_replication: bool = False
    # SQL the harness runs as the administrator after making the source table (a publication, the
    # replication right for the exporter's role), and after the exporter stopped (its slot).
    prepare_sql: tuple[Annotated[str, Field(min_length=1, max_length=10_000)], ...] = ()
    cleanup_sql: tuple[Annotated[str, Field(min_length=1, max_length=10_000)], ...] = ()
    # What the ready_path's answer must contain besides a 200 (a connector's task RUNNING).
    ready_body: Annotated[str, Field(max_length=1000)] = ""
    # Delivery promise: at-least-once targets redeliver after a crash by design; their duplicates
    # are reported and bounded by the scenario, never a loss.
    delivery: Literal["at-least-once", "effectively-once"] = "effectively-once"

    @classmethod
    def load(cls, path: Path = BUNDLED) -> TargetDefinition:
        text = read_text(path, "target definition", TargetError)
        data = parse(text, path, "target definition", TargetError)
        where = Locator(text)
        data = _extended(data, path, where)
        for key in ("defects", "steps", "uses", "apis", "prepare_sql", "cleanup_sql"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        if isinstance(data.get("record"), dict):
            data["record"] = _subtable(RecordFormat, "record", data["record"], path, where)
        if isinstance(data.get("log"), dict):
            data["log"] = _subtable(LogFormat, "log", data["log"], path, where)
        try:
            target = cls(**data)
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = [str(x) for x in error["loc"]]
            line = (where.key(loc[1], table=loc[0]) if len(loc) > 1 else None) or where.table(loc[0]) \
                or where.key(loc[0])
            raise TargetError(f"{path}:{line or '?'}: {'.'.join(loc)}: {error['msg']} "
                              f"(got {repr(error.get('input'))[:80]})") from exc
        for key in ("delivered", "dead_lettered"):
            if target.metrics and key not in target.metrics:  # no [metrics] at all: a target without them
                raise TargetError(f"{path}:{where.table('metrics') or '?'}: [metrics] needs {key!r}")
        for sink in ("kafka_topic",):
            if sink not in target.sinks:
                raise TargetError(f"{path}:{where.table('sinks') or '?'}: [sinks] needs {sink!r}")
        from harness.steps import StepKindError, load_modules

        try:
            load_modules(target.steps, f"{path}:{where.key('steps') or '?'}: steps")
        except StepKindError as exc:
            raise TargetError(str(exc)) from exc
        unknown = sorted(set(target.knobs) - set(KNOBS))
        if unknown:
            raise TargetError(f"{path}:{where.key(unknown[0], table='knobs') or '?'}: knobs.{unknown[0]}: not a knob "
                              f"Faultline knows; knobs: {', '.join(KNOBS)}")
        return target

    def has_sink(self, name: str) -> bool:
        return name in self.sinks

    def cannot_run(self, sink: str, expects_dead_letters: bool) -> str | None:
        """Why a scenario's sink or expectations do not fit this target, or None."""
        if sink == "file" and "file_sink" not in self.sinks:
            return f"target {self.name} has no file sink"
        if expects_dead_letters and "dead_letter_stream" not in self.sinks:
            return f"target {self.name} has no dead-letter stream, and the scenario expects dead letters"
        return None

    def idle_for(self, step: object) -> str | None:
        """Why a step has nothing to act on here (a fault on a server the pipeline does not go
        through): harmless alongside others, but a scenario of only such faults tests nothing."""
        needs = getattr(step, "needs", None)
        describe = getattr(step, "describe", lambda: type(step).__name__)
        for need in sorted(needs() if needs is not None else ()):
            what = need.partition(":")[2]
            if what in SERVERS and what not in self.uses:
                return f"target {self.name} does not use {what}: nothing for {describe()} to act on"
        return None

    def unsupported(self, step: object) -> str | None:
        """Why a step cannot run against this target: it needs an HTTP API the target does not
        offer (``apis``) or a sink it does not have (the scenario is then skipped with the reason)."""
        needs = getattr(step, "needs", None)
        describe = getattr(step, "describe", lambda: type(step).__name__)
        for need in sorted(needs() if needs is not None else ()):
            kind, _, what = need.partition(":")
            if kind == "api" and what not in self.apis:
                return f"target {self.name} offers no {what} API ({describe()} needs it)"
            if kind == "sink" and what not in self.sinks:
                return f"target {self.name} has no {what} ({describe()} needs it)"
        return None

    @property
    def has_metrics(self) -> bool:
        return bool(self.metrics)

    def knob_env(self, knobs: dict[str, str]) -> dict[str, str]:
        """The target's settings for these knob values; a knob it lacks is a KnobMissing."""
        missing = sorted(set(knobs) - set(self.knobs))
        if missing:
            raise KnobMissing(f"target {self.name} has no knob {', '.join(repr(k) for k in missing)} "
                              f"(its [knobs]: {', '.join(self.knobs) or 'none'})")
        # A knob mapped to "" is one the target has no setting for: the scenario runs on its own behaviour.
        return {self.knobs[name]: value for name, value in knobs.items() if self.knobs[name]}


def _extended(data: dict[str, Any], path: Path, where: Locator) -> dict[str, Any]:
    """``extends = "other.toml"`` (beside this file): that definition's keys, this file's on top
    (a table given here replaces the base's whole). One level: a base that extends is refused."""
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    line = where.key("extends") or "?"
    if not isinstance(base_name, str) or "/" in base_name or not base_name.endswith(".toml"):
        raise TargetError(f"{path}:{line}: extends: name a .toml file beside this one (got {base_name!r})")
    base_path = path.parent / base_name
    base = parse(read_text(base_path, "target definition", TargetError), base_path, "target definition", TargetError)
    if "extends" in base:
        raise TargetError(f"{path}:{line}: extends: {base_name} extends another itself (one level only)")
    return {**base, **data}


_Format = TypeVar("_Format", RecordFormat, LogFormat)


def _subtable(format_class: type[_Format], table: str, data: dict[str, Any], path: Path, where: Locator) -> _Format:
    """A table of the definition read as its own dataclass ([record], [log]), errors at its line."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(format_class)})
    if unknown:
        line = where.key(unknown[0], table=table) or where.table(table)
        raise TargetError(f"{path}:{line or '?'}: {table}.{unknown[0]}: not a field of [{table}]")
    try:
        return format_class(**data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(x) for x in error["loc"])
        line = (where.key(loc.split(".")[0], table=table) if loc else None) or where.table(table)
        raise TargetError(f"{path}:{line or '?'}: {table}{'.' + loc if loc else ''}: {error['msg']} "
                          f"(got {repr(error.get('input'))[:80]})") from exc


class KnobMissing(TargetError):
    """A scenario needs a knob the target definition does not map: the scenario is skipped."""


@dataclass
class RunContext:
    """The values a target definition's placeholders are filled with."""

    stack: Stack
    namespace: str
    workdir: Path
    http_port: int = field(default_factory=free_port)
    tokens: ApiTokens = field(default_factory=ApiTokens.generate)
    components: dict[str, str] = field(default_factory=dict)  # {java}, {debezium_libs}: what the target requires

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
                "redis_url": self.stack.exporter_redis_url(proxied=True),
                "kafka_bootstrap": self.stack.kafka_bootstrap(proxied=True),
                "kafka_client_id": self.stack.kafka_client_id, "http_port": str(self.http_port),
                "namespace": self.namespace, "source_table": self.source_table, "topic": self.topic,
                "workdir": str(self.workdir), "python": sys.executable,
                "api_tokens_file": str(self.api_tokens_file)}

    def fill(self, template: str, env: dict[str, str] | None = None) -> str:
        """The template with placeholders filled; ``env``: the exporter's environment, as
        ``{env[NAME]}`` (a file the target writes can carry a knob's value)."""
        try:
            return template.format(**self.values(), env=env or {})
        except KeyError as exc:
            raise TargetError(f"unknown placeholder {exc} in target definition value {template!r}") from exc


def required_components(target: TargetDefinition) -> dict[str, str]:
    """Placeholders for what the target requires, installed first when missing: ``{java}`` and,
    for ``requires.debezium``, ``{debezium_libs}`` (the worker's class path directory)."""
    if not target.requires:
        return {}
    from harness.provision import Debezium, ensure, require

    found = {"java": require("java").path}
    if "debezium" in target.requires:
        found["debezium_libs"] = ensure(Debezium(target.requires["debezium"]), log=lambda _m: None).path
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
            timeout=self.start_timeout, cwd=str(project_root()), envvars=environment,
            ready=self._ready)
        self.executor.start()
        self.starts += 1

    def _ready(self) -> bool:
        answer = self.http.get(self.target.ready_path, timeout=1)
        return answer.status_code == 200 and self.target.ready_body in answer.text

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
