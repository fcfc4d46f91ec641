"""Kafka answering one request at a time, through the Kafka protocol proxy on the Kafka link
(harness.infra.proxies.kafka): a produce request's partitions answered with an error code while
its other partitions are written (``kafka_produce_error``), or a request of one API ending its
connection before the broker sees it or after it ran, answered late, or never
(``kafka_request_fault``). Whether the
exporter retries what is transient and dead-letters only what is permanent is its delivery
contract; librdkafka retries the retriable codes itself and reports the rest to the delivery
callback, so both paths are reached."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.infra.proxies.kafka import KafkaProxy, PartitionErrorRule, RequestRule
from harness.model.capabilities import Need
from harness.steps.base import STRICT, Problem, World
from harness.steps.kafka_faults import create_topic
from harness.steps.protocol import TriggeredFault, ensure_proxy
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

KafkaErrorName = Literal["NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
                         "REQUEST_TIMED_OUT", "KAFKA_STORAGE_ERROR", "CORRUPT_MESSAGE", "UNKNOWN_TOPIC_OR_PARTITION",
                         "TOPIC_AUTHORIZATION_FAILED", "UNKNOWN_SERVER_ERROR", "POLICY_VIOLATION",
                         "RECORD_LIST_TOO_LARGE", "INVALID_PRODUCER_EPOCH", "MESSAGE_TOO_LARGE", "INVALID_RECORD",
                         "OUT_OF_ORDER_SEQUENCE_NUMBER", "DUPLICATE_SEQUENCE_NUMBER"]
# Retriable by Kafka's own classification (librdkafka retries them until message.timeout.ms)...
TRANSIENT: tuple[KafkaErrorName, ...] = (
    "NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "REQUEST_TIMED_OUT",
    "KAFKA_STORAGE_ERROR", "CORRUPT_MESSAGE", "UNKNOWN_TOPIC_OR_PARTITION")
# ...and not: librdkafka hands these to the delivery callback. Of them only MESSAGE_TOO_LARGE and
# INVALID_RECORD are about the record; the others say nothing against it (an ACL missing for a
# moment, a policy, a broker's bug), and a record refused with them is deliverable later.
REPORTED: tuple[KafkaErrorName, ...] = (
    "TOPIC_AUTHORIZATION_FAILED", "UNKNOWN_SERVER_ERROR", "POLICY_VIOLATION", "RECORD_LIST_TOO_LARGE",
    "INVALID_PRODUCER_EPOCH", "MESSAGE_TOO_LARGE", "INVALID_RECORD")
# kio's names for the APIs a client of the pipeline sends.
KafkaApi = Literal["produce", "fetch", "metadata", "find_coordinator", "join_group", "sync_group", "heartbeat",
                   "offset_commit", "offset_fetch", "list_offsets", "init_producer_id", "api_versions"]


@step_kind
@dataclass(frozen=True, config=STRICT, kw_only=True)
class KafkaProduceError(TriggeredFault):
    """The broker answers the pipeline's produce requests for ``partition`` (-1: any) of the
    run's topic with ``error``; the request's other partitions are written. From the ``nth``
    matching partition on, ``times`` times (0: every one while in force), each with
    ``probability`` (seeded by ``seed``)."""

    kind_name: ClassVar[str] = "kafka_produce_error"
    proxy_server: ClassVar[str] = "kafka"
    error: KafkaErrorName = "NOT_LEADER_OR_FOLLOWER"
    partition: Annotated[int, Field(ge=-1, le=99)] = -1
    # The topic is made with this many partitions before the exporter starts (when it does not
    # exist yet), so that one request carries several and one can be refused alone.
    partitions: Annotated[int, Field(ge=1, le=100)] = 3

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KafkaProduceError:
        # Half the draws a code the client reports, once or twice: librdkafka retries the transient
        # ones itself, so those are where the exporter's own delivery logic is tested (a record
        # refused while its neighbours are written must stay in the buffer). The n-th from the
        # first few only: a window of a few seconds sees one or two produce requests of three
        # partitions, and a fault that never fires tested nothing.
        reported = rng.random() < 0.5
        error: KafkaErrorName = rng.choice(REPORTED[:4] if reported else TRANSIENT)
        return cls(error=error, partition=rng.choice((-1, -1, 0)), nth=rng.choice((1, 1, 1, 2, 3)),
                   times=rng.choice((1, 2) if reported else (1, 3, 0)), probability=rng.choice((1.0, 1.0, 0.5)),
                   seed=rng.randrange(1, 1_000_000))

    def describe(self) -> str:
        where = "any partition" if self.partition < 0 else f"partition {self.partition}"
        return f"kafka answers produce to {where} with {self.error} {self.how_often()}"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.protocol("kafka"), Need.sink("kafka_topic"), Need.admin("kafka")})

    def check(self) -> Problem | None:
        if self.partition >= self.partitions:
            return Problem("partition", f"partition {self.partition} of a topic made with {self.partitions}")
        return None

    def prepare(self, run: StepContext) -> None:
        create_topic(run, run.sink("kafka_topic"), partitions=self.partitions)
        ensure_proxy(run, "kafka", lambda upstream, clock: KafkaProxy(upstream, clock))

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        rule = PartitionErrorRule(self.error, run.sink("kafka_topic"), self.partition, self.trigger())
        return self.put_on(run, "kafka", rule, record)



@step_kind
@dataclass(frozen=True, config=STRICT, kw_only=True)
class KafkaRequestFault(TriggeredFault):
    """A request of ``api``: its connection ends ``disconnect`` (before the broker sees it) or
    ``cut`` (after the broker ran it, the answer lost: a produce written, the client not told);
    or its answer is held ``delay_ms`` (``delay``; the answers after it wait their turn), or
    never comes, nor any after it on that connection (``drop``: a broker stuck on the request,
    until the client's request timeout gives up on the connection)."""

    kind_name: ClassVar[str] = "kafka_request_fault"
    proxy_server: ClassVar[str] = "kafka"
    api: KafkaApi = "produce"
    answer: Literal["disconnect", "cut", "delay", "drop"] = "cut"
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KafkaRequestFault:
        api: KafkaApi = rng.choice(("produce", "produce", "metadata", "fetch", "init_producer_id"))
        answer: Literal["disconnect", "cut", "delay", "drop"] = rng.choice(("cut", "disconnect", "delay", "drop"))
        return cls(api=api, answer=answer, delay_ms=rng.choice((500, 3000)) if answer == "delay" else 0,
                   nth=rng.choice((1, 2, 5)), times=rng.choice((1, 1, 3)), seed=rng.randrange(1, 1_000_000))

    def describe(self) -> str:
        what = {"disconnect": "ends its connection before the broker sees it",
                "cut": "ends its connection after the broker ran it",
                "delay": f"is answered {self.delay_ms} ms late",
                "drop": "is never answered (nor anything after it on its connection)"}[self.answer]
        return f"kafka {self.api} request {what} {self.how_often()}"

    def check(self) -> Problem | None:
        if (self.answer == "delay") != (self.delay_ms > 0):
            return Problem("delay_ms", "delay_ms is the length of a delay: set for answer 'delay', and only then")
        return None

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.protocol("kafka")})

    def prepare(self, run: StepContext) -> None:
        ensure_proxy(run, "kafka", lambda upstream, clock: KafkaProxy(upstream, clock))

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        return self.put_on(run, "kafka", RequestRule(self.api, self.answer, self.trigger(), self.delay_ms), record)
