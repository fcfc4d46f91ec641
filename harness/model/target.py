"""The system under test as a black box: its target definition, validated (the running process
is ``harness.rig.exporter_process``; the team modules it names are imported by
``harness.model.plugins.load_target``).

Faultline never imports the exporter. A target definition (TOML) says how to start it, which
environment to give it, where its HTTP endpoints, sinks, dead letters and metrics are; the
placeholders ``{postgres_dsn}``, ``{redis_url}``, ``{kafka_bootstrap}`` (all proxied; the DSN
and URL carry the exporter's own role and ACL user, never the harness's), ``{kafka_client_id}``,
``{http_port}``, ``{namespace}``, ``{source_table}``, ``{topic}``, ``{workdir}``,
``{api_tokens_file}`` (this run's API tokens, harness.model.api_tokens) and ``{python}`` are filled per
run, with ``{postgres_host}`` ... ``{postgres_database}`` (the DSN's parts) and, for a target that
``requires`` components, ``{java}``, ``{debezium_libs}`` and ``{debezium_server}``. ``api_auth = "bearer"`` makes every
request the harness sends carry its token. ARCHITECTURE.md's "Target definitions" lists the rest:
``[record]``, ``[log]``, ``uses``, ``apis``, ``[files]``, ``postgres_logical_replication``, ``delivery``.

``[knobs]`` maps the harness's knobs (delivery timeout, batch size, sink, ...) to the target's own
settings: a scenario names knobs, never a target's variables, so the catalogue runs against any
exporter; a scenario that needs a knob the target lacks is skipped with that reason.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from harness.errors import HarnessError
from harness.model.capabilities import Need, NeedKind
from harness.model.changes import TargetChanges
from harness.model.knobs import HARNESS_KNOBS, KNOBS, knob_problem
from harness.model.log_format import LogFormat
from harness.model.record_format import RecordFormat
from harness.model.tomlfile import Locator, parse, read_text
from harness.paths import shipped_dir

# What a dead-letter reason means (``[dead_letter_reasons]``): see harness.judge.letters.
LetterKind = Literal["not_utf8", "too_large", "unencodable", "trusted", "delivery"]

DEFECT_ENV = "FAULTLINE_EXPORTER_DEFECT"
BUNDLED = shipped_dir() / "targets" / "bundled-exporter.toml"


class TargetError(HarnessError):
    """A target definition is missing, malformed or incomplete."""


SERVERS = ("postgres", "redis", "kafka")
# The roles in a target's [metrics] that count errors; a target names those it has.
ERROR_COUNTERS = ("send_failures", "retries", "background_failures", "worker_restarts")
_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
# A path on the target's HTTP server: "//host/x" would leave it, a CR or LF would end the request line.
_Path = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^/([^/\x00-\x20\x7f][^\x00-\x20\x7f]*)?$")]
_Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]  # one printable line
# The placeholders a target's templated values may name (harness.rig.exporter_process.RunContext.values,
# and the components it requires); ``{env[NAME]}`` in a file it writes.
PLACEHOLDERS = frozenset({
    "postgres_host", "postgres_port", "postgres_user", "postgres_password", "postgres_database", "postgres_dsn",
    "redis_url", "kafka_bootstrap", "kafka_client_id", "http_port", "namespace", "source_table", "topic",
    "workdir", "python", "api_tokens_file", "java", "debezium_libs", "debezium_server", "env", "redis_sentinels",
    "redis_sentinel_service", "redis_host", "redis_port", "redis_user", "redis_password"})
SENTINEL_PLACEHOLDERS = ("{redis_sentinels}", "{redis_sentinel_service}")


@pydantic_dataclass(frozen=True, config=_STRICT)
class TargetDefinition:
    name: _Text
    command: Annotated[list[Annotated[str, Field(min_length=1, max_length=10_000)]], Field(min_length=1,
                                                                                          max_length=1000)]
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
    defects: tuple[_Text, ...] = ()
    knobs: dict[str, str] = field(default_factory=dict)  # harness knob -> the target's environment variable
    steps: tuple[str, ...] = ()  # modules of the target's own step kinds, imported when it is loaded
    # What its dead-letter reasons mean, so the harness can check each one (harness.judge.letters).
    dead_letter_reasons: dict[str, LetterKind] = field(default_factory=dict)
    # Records the pipeline may still move after it acknowledged a pause without saying it was
    # drained (a batch in the producer; the bundled exporter says whether it drained).
    pause_in_flight_max: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    # Whether a library can be preloaded into its process (LD_PRELOAD: a dynamically linked program,
    # a JVM, Python): clock and file-system faults need it; a static binary says false.
    preload: bool = True
    # How it reads its source: "statements" (SQL on the source table, counted per role by
    # pg_stat_statements while a pause is in force) or "replication" (a logical replication
    # stream, which statements do not show: not measured, and the check says so).
    source_reads: Literal["statements", "replication"] = "statements"
    # Statements it may run on the source table while paused that are not the pipeline reading
    # records (a lag poll, an export job the operator asked for): substrings of pg_stat_statements'
    # normalised text, e.g. "max(id)".
    paused_statements: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()
    # How a record sits in a sink message (harness.model.record_format); the default is the bundled one's.
    record: RecordFormat = field(default_factory=RecordFormat)
    # What it carries of a change workload (harness.model.changes): operations, every version or
    # the latest state, the knobs of its change mode. None: inserts only.
    changes: TargetChanges | None = None
    # How its log is read (harness.model.log_format): JSON lines (the bundled one's) or a log4j-style pattern.
    log: LogFormat = field(default_factory=LogFormat)
    # The servers the pipeline goes through: a step on a server it does not use is skipped (a
    # connector reading Postgres's WAL straight into Kafka has no Redis buffer).
    uses: Annotated[tuple[Literal["postgres", "redis", "kafka"], ...], Field(min_length=1)] = ("postgres", "redis",
                                                                                             "kafka")
    # Files written into the run's directory before each start, placeholders filled (a Kafka
    # Connect worker's and connector's properties, a logging configuration).
    files: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], Annotated[str, Field(max_length=100_000)]] = \
        field(default_factory=dict)
    # Optional components it needs, by version (`faultline setup --with NAME`); installed when missing.
    requires: dict[Literal["debezium", "debezium-server"],
                   Annotated[str, Field(pattern=r"^[0-9][A-Za-z0-9.-]*$")]] = field(
        default_factory=dict)
    # How pause and resume are asked: "grace" (POST pause_path?grace=S, answered once paused, with
    # what drained: the bundled exporter) or "connect" (Kafka Connect's REST API: PUT, 202 at once;
    # paused once ``status_path`` says so, polled until the grace runs out).
    pause_protocol: Literal["grace", "connect"] = "grace"
    status_path: _Path = "/status"
    # The HTTP APIs it offers besides readiness: pause/resume with a grace period, export jobs.
    apis: tuple[Literal["pause", "exports"], ...] = ("pause", "exports")
    # How it finds the buffer's Redis primary: "address" (the one proxied {redis_url}; a failover
    # points that proxy at the promoted replica) or "sentinel" (the harness runs a Sentinel, behind
    # a proxy, that monitors the primary: {redis_sentinels} and {redis_sentinel_service} name it,
    # and a failover is the Sentinel's).
    redis_discovery: Literal["address", "sentinel"] = "address"
    # Postgres with logical replication (wal_level=logical, slots, senders): a CDC connector's source.
    postgres_logical_replication: bool = False
    # SQL the harness runs as the administrator after making the source table (a publication, the
    # replication right for the exporter's role), and after the exporter stopped (its slot).
    prepare_sql: tuple[Annotated[str, Field(min_length=1, max_length=10_000)], ...] = ()
    cleanup_sql: tuple[Annotated[str, Field(min_length=1, max_length=10_000)], ...] = ()
    # What the ready_path's answer must contain besides a 200 (a connector's task RUNNING).
    ready_body: Annotated[str, Field(max_length=1000)] = ""
    # A query the harness runs as the administrator, besides the ready path, until its first column
    # is true: ready in what the pipeline does, not in what it answers (Debezium Server's health
    # is UP before its replication slot exists; what is written before that is a snapshot's
    # state, not a change history).
    ready_sql: Annotated[str, Field(max_length=10_000)] = ""
    # The Redis commands it sends: explore draws per-command error answers among them (a command
    # it never sends tests nothing); empty: the bundled exporter's.
    redis_commands: tuple[Annotated[str, Field(pattern=r"^[A-Za-z]{1,40}$")], ...] = ()
    # Delivery promise: at-least-once targets redeliver after a crash by design; their duplicates
    # are reported and bounded by the scenario, never a loss.
    delivery: Literal["at-least-once", "effectively-once"] = "effectively-once"

    @classmethod
    def load(cls, path: Path = BUNDLED) -> TargetDefinition:
        text = read_text(path, "target definition", TargetError)
        data = parse(text, path, "target definition", TargetError)
        where = Locator(text)
        data = _extended(data, path, where)
        for key in ("defects", "steps", "uses", "apis", "prepare_sql", "cleanup_sql", "paused_statements",
                    "redis_commands"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        if isinstance(data.get("record"), dict):
            record = dict(data["record"])
            for key in ("inserts", "updates", "deletes"):
                if isinstance(record.get(key), list):
                    record[key] = tuple(record[key])
            data["record"] = _subtable(RecordFormat, "record", record, path, where)
        if isinstance(data.get("log"), dict):
            data["log"] = _subtable(LogFormat, "log", data["log"], path, where)
        if isinstance(data.get("changes"), dict):
            changes = dict(data["changes"])
            for key in ("operations", "prepare_sql"):
                if isinstance(changes.get(key), list):
                    changes[key] = tuple(changes[key])
            data["changes"] = _subtable(TargetChanges, "changes", changes, path, where)
        if isinstance(data.get("record"), RecordFormat) and (problem := data["record"].problem()) is not None:
            raise TargetError(f"{path}:{where.key(problem[0], table='record') or where.table('record') or '?'}: "
                              f"record.{problem[0]}: {problem[1]}")
        try:
            target = cls(**data)
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = [str(x) for x in error["loc"]]
            line = (where.key(loc[1], table=loc[0]) if len(loc) > 1 else None) or where.table(loc[0]) \
                or where.key(loc[0])
            raise TargetError(f"{path}:{line or '?'}: {'.'.join(loc)}: {error['msg']} "
                              f"(got {repr(error.get('input'))[:80]})") from exc
        for key, value in target.templated():
            problem = template_problem(value)
            if problem:
                raise TargetError(f"{path}:{where.key(key.split('.')[-1]) or where.table(key.split('.')[0]) or '?'}: "
                                  f"{key}: {problem} (in {value[:80]!r})")
        for key in ("delivered", "dead_lettered"):
            if target.metrics and key not in target.metrics:  # no [metrics] at all: a target without them
                raise TargetError(f"{path}:{where.table('metrics') or '?'}: [metrics] needs {key!r}")
        if not {"kafka_topic", "redis_stream"} & set(target.sinks):
            raise TargetError(f"{path}:{where.table('sinks') or '?'}: [sinks] needs 'kafka_topic' (or, for a "
                              "pipeline into Redis Streams, 'redis_stream'): where its records are judged")
        unknown = sorted(set(target.knobs) - set(KNOBS))
        if unknown:
            raise TargetError(f"{path}:{where.key(unknown[0], table='knobs') or '?'}: knobs.{unknown[0]}: not a knob "
                              f"Faultline knows; knobs: {', '.join(KNOBS)}")
        _check_changes(target, path, where)
        _check_discovery(target, path, where)
        return target

    def templated(self) -> list[tuple[str, str]]:
        """Every value whose placeholders are filled at start, by where it is written."""
        return [*((f"command.{n}", v) for n, v in enumerate(self.command)),
                *((f"env.{k}", v) for k, v in self.env.items()), *((f"sinks.{k}", v) for k, v in self.sinks.items()),
                *((f"files.{k}", v) for k, v in self.files.items()),
                *((f"prepare_sql.{n}", v) for n, v in enumerate(self.prepare_sql)),
                *((f"cleanup_sql.{n}", v) for n, v in enumerate(self.cleanup_sql)),
                *((("ready_sql", self.ready_sql),) if self.ready_sql else ()),
                *((f"changes.prepare_sql.{n}", v) for n, v in enumerate(self.changes.prepare_sql if self.changes
                                                                        else ()))]

    def cannot_carry(self, operations: frozenset[str]) -> str | None:
        """Why a change workload of these operations does not fit this target, or None."""
        if self.changes is None:
            return f"target {self.name} carries inserts only (no [changes] in its definition)"
        missing = self.changes.missing(operations)
        if missing:
            return (f"target {self.name} does not carry {', '.join(missing)} (its [changes] operations: "
                    f"{', '.join(self.changes.operations)})")
        return None

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
        describe = getattr(step, "describe", lambda: type(step).__name__)
        for need in _needs_of(step):
            if need.server in SERVERS and need.server not in self.uses:
                return f"target {self.name} does not use {need.server}: nothing for {describe()} to act on"
        return None

    def unsupported(self, step: object) -> str | None:
        """Why a step cannot run against this target: it needs an HTTP API the target does not
        offer (``apis``) or a sink it does not have (the scenario is then skipped with the reason)."""
        describe = getattr(step, "describe", lambda: type(step).__name__)
        for need in _needs_of(step):
            if need.kind is NeedKind.API and need.name not in self.apis:
                return f"target {self.name} offers no {need.name} API ({describe()} needs it)"
            if need.kind is NeedKind.PRELOAD and not self.preload:
                return (f"target {self.name} cannot have {need.name} preloaded into its process (a static "
                        f"binary; `preload = false`), which {describe()} needs")
            if need.kind is NeedKind.SINK and need.name not in self.sinks:
                return f"target {self.name} has no {need.name} ({describe()} needs it)"
        return None

    @property
    def has_metrics(self) -> bool:
        return bool(self.metrics)

    def knob_env(self, knobs: dict[str, str]) -> dict[str, str]:
        """The target's settings for these knob values; a knob it lacks is a KnobMissing."""
        knobs = {name: value for name, value in knobs.items() if name not in HARNESS_KNOBS}
        missing = sorted(set(knobs) - set(self.knobs))
        if missing:
            raise KnobMissing(f"target {self.name} has no knob {', '.join(repr(k) for k in missing)} "
                              f"(its [knobs]: {', '.join(self.knobs) or 'none'})")
        # A knob mapped to "" is one the target has no setting for: the scenario runs on its own behaviour.
        return {self.knobs[name]: value for name, value in knobs.items() if self.knobs[name]}


def template_problem(value: str) -> str | None:
    """Why ``value`` cannot be filled (an unclosed brace, a positional or unknown placeholder), or None."""
    try:
        fields = [name for _text, name, _spec, _conversion in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        return f"not a template: {exc} (write a literal brace as {{{{ or }}}})"
    for name in fields:
        head = name.split("[", 1)[0].split(".", 1)[0]
        if head not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}}; placeholders: {', '.join(sorted(PLACEHOLDERS))}"
    return None


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


def _check_discovery(target: TargetDefinition, path: Path, where: Locator) -> None:
    """Sentinel discovery that the target is told about, and Sentinel placeholders only with it."""
    named = [key for key, value in target.templated() if any(p in value for p in SENTINEL_PLACEHOLDERS)]
    line = where.key("redis_discovery") or "?"
    if target.redis_discovery == "sentinel" and not any("{redis_sentinels}" in v for _, v in target.templated()):
        raise TargetError(f"{path}:{line}: redis_discovery: sentinel, but no value names {{redis_sentinels}} (the "
                          "exporter would never learn where the sentinels are)")
    if target.redis_discovery == "address" and named:
        raise TargetError(f"{path}:{where.key(named[0].split('.')[-1]) or '?'}: {named[0]}: a Sentinel placeholder, "
                          'but redis_discovery is "address" (set redis_discovery = "sentinel" to have one run)')


def _check_changes(target: TargetDefinition, path: Path, where: Locator) -> None:
    """A [changes] table that the rest of the definition can honour: updates and deletes need an
    operation in [record]; its knobs must be the target's."""
    changes = target.changes
    if changes is None:
        return
    if set(changes.operations) - {"insert"} and not target.record.op:
        raise TargetError(f"{path}:{where.key('operations', table='changes') or '?'}: changes.operations: "
                          f"{', '.join(changes.operations)} need [record] op (where a message says its operation)")
    if changes.transactions == "marked" and not target.record.transaction:
        raise TargetError(f"{path}:{where.key('transactions', table='changes') or '?'}: changes.transactions: "
                          "marked needs [record] transaction (where a message names its transaction)")
    unknown = sorted(set(changes.knobs) - set(target.knobs))
    if unknown:
        raise TargetError(f"{path}:{where.table('changes') or '?'}: changes.knobs.{unknown[0]}: not in this "
                          f"target's [knobs] ({', '.join(target.knobs) or 'none'})")
    for name, value in changes.knobs.items():
        if (problem := knob_problem(name, value)) is not None:
            raise TargetError(f"{path}:{where.table('changes') or '?'}: changes.knobs.{name} {problem}")


_Format = TypeVar("_Format", RecordFormat, LogFormat, TargetChanges)


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


def _needs_of(step: object) -> list[Need]:
    """A step's needs in a stable order (the target model does not import the step kinds)."""
    needs = getattr(step, "needs", None)
    return sorted(needs() if needs is not None else ())
