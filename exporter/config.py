"""Settings from a TOML file and/or ``EXPORTER_*`` environment variables (the environment wins)."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from exporter.errors import ConfigError

ENV_PREFIX = "EXPORTER_"


@dataclass(frozen=True)
class Config:
    postgres_dsn: str = ""
    redis_url: str = ""
    # Sentinels ("host:port,host:port") that name the buffer's primary: the exporter asks them for
    # it on every connection and follows a failover (redis_url then gives only user, password and
    # database). Empty: redis_url's address is the primary.
    redis_sentinels: str = ""
    redis_sentinel_service: str = "mymaster"  # the name the sentinels monitor the primary by
    kafka_bootstrap: str = ""
    kafka_client_id: str = "exporter"  # what broker quotas and logs know this exporter by
    source_table: str = "source_records"
    # rows: read the source table's rows (inserts; the table is append-only). changes: read the
    # change log a trigger keeps beside it ("<source_table>_changes": op, row_id, key, payload, in
    # commit order; README, "Change mode"), and deliver inserts, updates, deletes and key changes.
    source_mode: str = "rows"
    sink: str = "kafka"  # kafka | file | both
    topic: str = "exported-records"
    file_sink_dir: str = ""
    export_dir: str = ""
    stream_prefix: str = "exporter"
    consumer_name: str = "exporter-1"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    batch_size: int = 2000
    # Records per buffer stream entry: one XADD carries a pack, so Redis does a pack's work once
    # per pack instead of once per record (the buffer's cost dominated the exporter's CPU).
    pack_size: int = 100
    max_buffer: int = 50_000
    max_record_bytes: int = 900_000
    sink_encoding: str = "utf-8"
    poll_interval_s: float = 0.2
    claim_idle_ms: int = 10_000
    kafka_message_timeout_ms: int = 10_000
    # What counts as delivered: "all" (every in-sync replica has the record) with an idempotent
    # producer (a retry after a leader change neither duplicates nor reorders). "1" (the leader's
    # own write) is faster and loses what a leader acknowledged and died with before its
    # followers fetched it; idempotence needs "all".
    kafka_acks: str = "all"
    kafka_idempotence: bool = True
    # The fewest in-sync replicas the topic must demand of an acks=all write (its
    # min.insync.replicas). At 1, a leader whose followers fell out of the ISR acknowledges alone,
    # and an unclean election then loses what it acknowledged: below this, the deliverer holds its
    # records in the buffer and readiness says why. 0: no expectation.
    kafka_min_insync_replicas: int = 0
    redis_timeout_s: float = 2.0
    # Replicas that must have an append (and the checkpoint moved with it) before the reader reads
    # on: Redis replicates asynchronously, so a failover loses what the replica had not received.
    # The checkpoint goes back with it and the rows are read again; waiting (WAIT) makes the
    # replica hold every checkpoint the reader acted on. While fewer replicas acknowledge, the
    # reader holds (availability for durability). 0: no waiting.
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 1000
    postgres_timeout_s: float = 5.0
    # How long the reader waits for a transaction older than rows already committed (it may hold
    # lower ids) before it reads past it: past this, such a transaction's rows would be skipped.
    source_settle_timeout_s: float = 60.0
    retry_max_backoff_s: float = 2.0
    metadata_poll_interval_s: float = 2.0
    pause_grace_s: float = 5.0
    quota_jobs_per_hour: int = 20
    quota_rows_per_job: int = 1_000_000
    disk_usage_threshold: float = 0.85
    # The job API: tokens per user (exporter.auth), the largest request body, the topics a Kafka
    # export may write (comma-separated; never the pipeline's own), finished jobs remembered.
    api_tokens_file: str = ""
    api_max_body_bytes: int = 65_536
    # A request (head and body) must be received within this long of its first byte (408 otherwise).
    api_read_timeout_s: float = 10.0
    export_topics: str = ""
    jobs_kept: int = 1000  # finished jobs kept per user
    api_docs: bool = False  # serve /openapi.json and /docs (off: they map the API for anyone)
    jobs_kept_s: float = 3600.0
    log_level: str = "INFO"
    # Where each worker (reader, deliverer) writes its cProfile statistics when it stops, as
    # <kind>-<pid>.prof (empty: not profiled). For finding where the pipeline's time goes.
    profile_dir: str = ""

    @property
    def changes(self) -> bool:
        return self.source_mode == "changes"

    @property
    def read_table(self) -> str:
        """The table the reader pages through: the source table, or its change log."""
        return f"{self.source_table}_changes" if self.changes else self.source_table

    @property
    def stream(self) -> str:
        return f"{self.stream_prefix}:buffer"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.stream_prefix}:dlq"

    @property
    def checkpoint_key(self) -> str:
        return f"{self.stream_prefix}:checkpoint"

    @property
    def replication_probe_key(self) -> str:
        return f"{self.stream_prefix}:replication-probe"

    @property
    def allowed_export_topics(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.export_topics.split(",") if t.strip()) - {self.topic}

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``redis_sentinels`` as (host, port) pairs; a malformed one is a ConfigError."""
        addresses = []
        for item in (part.strip() for part in self.redis_sentinels.split(",")):
            if not item:
                continue
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"redis_sentinels: {item!r} is not host:port ({ENV_PREFIX}REDIS_SENTINELS)")
            addresses.append((host.strip("[]"), int(port)))
        return addresses

    @property
    def group(self) -> str:
        return f"{self.stream_prefix}-group"

    def validate(self) -> Config:
        missing = [name for name in ("postgres_dsn", "redis_url") if not getattr(self, name)]
        if self.sink in ("kafka", "both") and not self.kafka_bootstrap:
            missing.append("kafka_bootstrap")
        if self.sink in ("file", "both") and not self.file_sink_dir:
            missing.append("file_sink_dir")
        if missing:
            raise ConfigError("missing settings: " + ", ".join(f"{m} ({ENV_PREFIX}{m.upper()})" for m in missing))
        if self.sink not in ("kafka", "file", "both"):
            raise ConfigError(f"sink must be kafka, file or both, not {self.sink!r} ({ENV_PREFIX}SINK)")
        if self.source_mode not in ("rows", "changes"):
            raise ConfigError(f"source_mode must be rows or changes, not {self.source_mode!r} "
                              f"({ENV_PREFIX}SOURCE_MODE)")
        if not self.source_table.replace("_", "").isalnum():
            raise ConfigError(f"source_table {self.source_table!r} must be a plain identifier")
        try:
            "".encode(self.sink_encoding)
        except LookupError as exc:
            raise ConfigError(f"sink_encoding {self.sink_encoding!r} is not an encoding Python knows") from exc
        if not 1 <= self.pack_size <= 10_000:
            raise ConfigError(f"pack_size must be within 1..10000, not {self.pack_size} ({ENV_PREFIX}PACK_SIZE)")
        if not 0 < self.source_settle_timeout_s <= 86_400:
            raise ConfigError(f"source_settle_timeout_s must be within (0, 86400], not {self.source_settle_timeout_s}")
        if not 1 <= self.api_max_body_bytes <= 16 * 1024 * 1024:
            raise ConfigError(f"api_max_body_bytes must be within 1..16 MiB, not {self.api_max_body_bytes}")
        if not 0 < self.api_read_timeout_s <= 600:
            raise ConfigError(f"api_read_timeout_s must be within (0, 600], not {self.api_read_timeout_s}")
        if not 1 <= self.jobs_kept <= 1_000_000 or not 0 < self.jobs_kept_s <= 30 * 86_400:
            raise ConfigError(f"jobs_kept must be within 1..1000000 and jobs_kept_s within (0, 30 days], not "
                              f"{self.jobs_kept} and {self.jobs_kept_s}")
        if self.kafka_acks not in ("all", "1"):
            raise ConfigError(f"kafka_acks must be all or 1, not {self.kafka_acks!r} ({ENV_PREFIX}KAFKA_ACKS)")
        if self.kafka_idempotence and self.kafka_acks != "all":
            raise ConfigError(f"kafka_idempotence needs kafka_acks=all, not {self.kafka_acks!r} (an idempotent "
                              f"producer's sequence is kept by every in-sync replica)")
        if not 0 <= self.kafka_min_insync_replicas <= 16 or not 0 <= self.redis_wait_replicas <= 16:
            raise ConfigError(f"kafka_min_insync_replicas and redis_wait_replicas must be within 0..16, not "
                              f"{self.kafka_min_insync_replicas} and {self.redis_wait_replicas}")
        if self.kafka_min_insync_replicas and self.kafka_acks != "all":
            raise ConfigError(f"kafka_min_insync_replicas needs kafka_acks=all, not {self.kafka_acks!r} (a topic's "
                              f"min.insync.replicas binds acks=all writes only)")
        if not 10 <= self.redis_wait_timeout_ms < self.redis_timeout_s * 1000:
            raise ConfigError(f"redis_wait_timeout_ms must be at least 10 and below redis_timeout_s (the wait is "
                              f"one command), not {self.redis_wait_timeout_ms}")
        if self.redis_sentinels and not self.sentinel_addresses:
            raise ConfigError(f"redis_sentinels names no sentinel ({ENV_PREFIX}REDIS_SENTINELS)")
        if self.redis_sentinels and not self.redis_sentinel_service.strip():
            raise ConfigError(f"redis_sentinel_service is empty ({ENV_PREFIX}REDIS_SENTINEL_SERVICE)")
        if not 0 < self.disk_usage_threshold <= 1:
            raise ConfigError(f"disk_usage_threshold must be within (0, 1], not {self.disk_usage_threshold}")
        return self


def _coerce(name: str, raw: object, kind: type) -> object:
    try:
        if kind is bool:
            return str(raw).lower() in ("1", "true", "yes", "on")
        value = kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {raw!r} is not a valid {kind.__name__}") from exc
    if kind is float and not math.isfinite(value):
        # A NaN deadline never passes and compares false with every bound: refuse it here.
        raise ConfigError(f"setting {name}: {raw!r} is not a finite number")
    return value


def load(path: str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read ``path`` (TOML, optional), then overlay ``EXPORTER_*`` variables."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    path = path or environ.get(f"{ENV_PREFIX}CONFIG")
    known = {f.name: f for f in fields(Config)}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        unknown = set(data) - set(known)
        if unknown:
            raise ConfigError(f"config file {path}: unknown settings {sorted(unknown)}")
        values.update(data)
    for name in known:
        env_name = f"{ENV_PREFIX}{name.upper()}"
        if env_name in environ:
            values[name] = environ[env_name]
    types = {f.name: type(f.default) for f in known.values()}
    coerced: dict[str, Any] = {name: _coerce(name, value, types[name]) for name, value in values.items()}
    return dataclasses.replace(Config(), **coerced).validate()
