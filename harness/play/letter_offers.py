"""Checking a run's dead letters against its sink (see ``letters.py`` for the rules): the limits
in force during the run, and a scratch topic that says whether the broker takes a record alone."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, Producer

from harness.catalogue.scenario import KafkaTopicSetting
from harness.errors import HarnessError
from harness.infra.kafka_clients import kafka_config
from harness.judge.letters import LetterCheck, SinkLimits, check_letters
from harness.judge.sinks import DeadLetterRecord
from harness.play.run import Run
from harness.steps.kafka_faults import create_topic, topic_setting

TIMEOUT_S = 15.0


def sink_limits(run: Run) -> SinkLimits:
    """The strictest limits the sink enforced during the run."""
    declared = run.scenario.knobs.get("max_record_bytes")
    if run.scenario.sink != "kafka":
        return SinkLimits(None, int(declared) if declared else None)
    now, _default = topic_setting(run, "max.message.bytes")
    lowered = [int(s.do.value) for s in run.scenario.steps
               if isinstance(s.do, KafkaTopicSetting) and s.do.name == "max.message.bytes"]
    in_force = [int(now)] if now else []
    return SinkLimits(min(in_force + lowered) if in_force + lowered else None, int(declared) if declared else None)


class ScratchTopics:
    """One scratch topic per limit, in the run's namespace: records produced there alone tell
    whether the broker accepts them under that ``max.message.bytes``. Made on first use."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.made: set[int] = set()
        self._producer: Producer | None = None

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer({**kafka_config(self.run.stack.admin_url("kafka")), "linger.ms": 0,
                                       "acks": "all", "message.max.bytes": 16 * 1024 * 1024,
                                       "message.timeout.ms": 10_000})
        return self._producer

    def topic(self, limit: int) -> str:
        name = f"{self.run.ctx.namespace}-letters-{limit}"
        if limit not in self.made:
            create_topic(self.run, name, {"max.message.bytes": str(limit)})
            self.made.add(limit)
        return name

    def accepts(self, value: bytes, limit: int) -> bool:
        reports: list[KafkaError | None] = []
        self.producer.produce(self.topic(limit), value, on_delivery=lambda err, _msg: reports.append(err))
        self.producer.flush(TIMEOUT_S)
        if not reports:
            raise HarnessError(f"kafka: no answer producing to the scratch topic within {TIMEOUT_S}s")
        err = reports[0]
        if err is None:
            return True
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return False
        raise HarnessError(f"kafka: the scratch topic refused a record for another reason: {err.str()}")


BROKER_DEFAULT_MAX_BYTES = 1_048_588  # Kafka's message.max.bytes when a topic sets none


def verify_dead_letters(run: Run, letters: list[DeadLetterRecord],
                        delivered: frozenset[int] = frozenset()) -> LetterCheck:
    """Each letter's reason against the record and the (healed) sink: content reasons checked
    (and disproved by the sink holding the record), delivery reasons and undeclared ones offered
    to the sink again."""
    if not letters:
        return LetterCheck()
    limits = sink_limits(run)
    scratch = ScratchTopics(run) if run.scenario.sink == "kafka" else None
    return check_letters(letters, dict(run.target.dead_letter_reasons), limits,
                         scratch.accepts if scratch is not None and limits.topic_max_bytes is not None else None,
                         offer_again(run, scratch, limits), delivered)


def offer_again(run: Run, scratch: ScratchTopics | None, limits: SinkLimits) -> Callable[[bytes], bool]:
    """How a dead-lettered record is offered to the healed sink: alone, to a scratch topic with
    the sink topic's limit; or appended to a scratch file beside the file sink."""
    if scratch is not None:
        limit = limits.topic_max_bytes or BROKER_DEFAULT_MAX_BYTES
        return lambda value: scratch.accepts(value, limit)
    path = run.ctx.workdir / "offered-again.bin"

    def append(value: bytes) -> bool:
        try:
            with path.open("ab") as scratch_file:
                scratch_file.write(value + b"\n")
        except OSError:
            return False  # the disk still refuses: not deliverable here either
        return True

    return append
