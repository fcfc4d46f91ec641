"""The Kafka broker changing under the exporter while the link is fine: a setting of its topic
(``max.message.bytes`` lowered: records or whole batches refused as too large) or more
partitions. Applied through the admin API, read back as evidence, restored when the window ends."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.kafka_clients import kafka_config
from harness.model.capabilities import Need
from harness.steps.base import STRICT, Problem, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

ADMIN_TIMEOUT_S = 15.0
# Topic settings a scenario may change (each is safe to set back): what a broker operator changes.
TOPIC_SETTINGS = ("max.message.bytes", "min.insync.replicas", "retention.ms", "message.timestamp.type",
                  "compression.type", "cleanup.policy")


def admin(run: StepContext) -> AdminClient:
    return AdminClient(kafka_config(run.stack.admin_url("kafka"), **{"socket.timeout.ms": 10_000}))


def topic_of(run: StepContext) -> str:
    return run.sink("kafka_topic")


def create_topic(run: StepContext, topic: str, config: dict[str, str] | None = None, partitions: int = 1) -> None:
    """``topic`` exists (``partitions``, one replica, ``config`` if it is made now)."""
    from confluent_kafka.admin import NewTopic

    client = admin(run)
    if topic in client.list_topics(timeout=ADMIN_TIMEOUT_S).topics:
        return
    for future in client.create_topics([NewTopic(topic, partitions, 1, config=config or {})]).values():
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise HarnessError(f"kafka: cannot create topic {topic}: {exc}") from exc


def ensure_topic(run: StepContext) -> None:
    """The run's topic exists (the exporter may not have created it yet): created with the
    broker's defaults, as auto-creation would."""
    create_topic(run, topic_of(run))


def topic_setting(run: StepContext, name: str) -> tuple[str | None, bool]:
    """The topic's value for ``name`` and whether it is the broker's default (not set on the topic)."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic_of(run))
    client = admin(run)  # held until the answer came: a client collected early cancels its requests
    try:
        configs = next(iter(client.describe_configs([resource]).values())).result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise HarnessError(f"kafka: cannot read the settings of {topic_of(run)}: {exc}") from exc
    entry = configs.get(name)
    return (entry.value if entry else None), (entry is None or entry.is_default)


def alter_topic(run: StepContext, name: str, value: str | None) -> None:
    """Set ``name`` on the run's topic (None: back to the broker's default)."""
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic_of(run), incremental_configs=[
        ConfigEntry(name, value or "", incremental_operation=op)])
    client = admin(run)
    try:
        for future in client.incremental_alter_configs([resource]).values():
            future.result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise HarnessError(f"kafka: cannot set {name}={value} on {topic_of(run)}: {exc}") from exc


@step_kind
@dataclass(frozen=True, config=STRICT)
class KafkaTopicSetting(StepKind):
    """A setting of the run's topic changed for the window (``max.message.bytes = 2000``: batches
    of small records refused as too large, though each record alone fits)."""

    kind_name: ClassVar[str] = "kafka_topic_setting"
    name: str = "max.message.bytes"
    value: Annotated[str, Field(min_length=1, max_length=200)] = "2000"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KafkaTopicSetting:
        return cls("max.message.bytes", rng.choice(("2000", "5000", "20000")))

    def describe(self) -> str:
        return f"kafka topic {self.name}={self.value}"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("kafka")})

    def check(self) -> Problem | None:
        if self.name not in TOPIC_SETTINGS:
            return Problem("name", f"{self.name!r} is not a topic setting a scenario may change; "
                                   f"allowed: {', '.join(TOPIC_SETTINGS)}")
        return None

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        ensure_topic(run)
        before, default = topic_setting(run, self.name)
        saved = None if default else before
        run.closers.append(lambda: alter_topic(run, self.name, saved))
        alter_topic(run, self.name, self.value)
        now, _ = topic_setting(run, self.name)
        record.evidence = f"{topic_of(run)} {self.name}: {before} -> {now} (read back from the broker)"
        return saved

    def remove(self, run: StepContext, handle: str | None, record: StepRecord) -> None:
        alter_topic(run, self.name, handle)
        now, _ = topic_setting(run, self.name)
        record.evidence += f"; restored to {now}"


@step_kind
@dataclass(frozen=True, config=STRICT)
class KafkaAddPartitions(StepKind):
    """The run's topic grows to ``total`` partitions (for good: Kafka cannot take partitions
    away). Records of one key keep their order only within a partition."""

    kind_name: ClassVar[str] = "kafka_add_partitions"
    total: Annotated[int, Field(ge=2, le=1000)] = 3

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KafkaAddPartitions:
        return cls(total=rng.choice((2, 3, 5)))

    def describe(self) -> str:
        return f"kafka topic grows to {self.total} partitions"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("kafka")})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        ensure_topic(run)
        client, topic = admin(run), topic_of(run)
        try:
            for future in client.create_partitions([NewPartitions(topic, self.total)]).values():
                future.result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise HarnessError(f"kafka: cannot grow {topic} to {self.total} partitions: {exc}") from exc
        partitions = len(client.list_topics(topic, timeout=ADMIN_TIMEOUT_S).topics[topic].partitions)
        record.evidence = f"{topic} has {partitions} partitions (read back from the broker)"


@step_kind
@dataclass(frozen=True, config=STRICT)
class KafkaQuota(StepKind):
    """The broker throttles the exporter's client id to ``producer_byte_rate`` bytes a second for
    the window (a client quota): sends slow down and may time out, never vanish."""

    kind_name: ClassVar[str] = "kafka_quota"
    producer_byte_rate: Annotated[int, Field(ge=1, le=10**12)] = 10_000

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KafkaQuota:
        return cls(producer_byte_rate=rng.choice((5000, 20000, 100000)))

    def describe(self) -> str:
        return f"kafka throttles the exporter to {self.producer_byte_rate} bytes/s"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("kafka"), Need.tool("kafka-configs"), Need.exporter_credentials()})

    def _entity(self, run: StepContext) -> list[str]:
        return ["--entity-type", "clients", "--entity-name", run.stack.kafka_client_id]

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        backend = run.stack.backend
        run.closers.append(lambda: self._clear(run))
        backend.kafka_configs(["--alter", *self._entity(run), "--add-config",
                               f"producer_byte_rate={self.producer_byte_rate}"])
        shown = backend.kafka_configs(["--describe", *self._entity(run)])
        record.evidence = f"quota read back: {shown}"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        self._clear(run)
        record.evidence += f"; after: {run.stack.backend.kafka_configs(['--describe', *self._entity(run)]) or 'none'}"

    def _clear(self, run: StepContext) -> None:
        shown = run.stack.backend.kafka_configs(["--describe", *self._entity(run)])
        if "producer_byte_rate" in shown:
            run.stack.backend.kafka_configs(["--alter", *self._entity(run), "--delete-config", "producer_byte_rate"])
