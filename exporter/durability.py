"""What the sink topic demands of an acks=all write, checked against what this exporter expects.

``acks=all`` means "every replica in the ISR has it", and the ISR may shrink to the leader alone:
a topic's ``min.insync.replicas`` is what keeps such a leader from acknowledging by itself. At 1,
a leader whose followers fell behind acknowledges alone, and an unclean election (or its disk)
then loses what it acknowledged, with no error anywhere. With ``kafka_min_insync_replicas`` set,
the deliverer sends nothing to a topic that demands fewer (the records wait in the buffer) and
readiness names the topic and both numbers.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from exporter.errors import TransientError

SETTING = "min.insync.replicas"
STAGE = "sink.kafka.durability"


def min_insync_replicas(admin: AdminClient, topic: str, timeout_s: float) -> tuple[int, str]:
    """The topic's min.insync.replicas and where it comes from: the topic's own setting, or, for a
    topic not made yet (the first write makes it), the broker default it will be made with."""
    try:
        return _setting(admin, ConfigResource(ResourceType.TOPIC, topic), timeout_s), f"topic {topic}"
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise TransientError(STAGE, exc) from exc
    try:
        brokers = admin.list_topics(timeout=timeout_s).brokers
    except KafkaException as exc:
        raise TransientError(STAGE, exc) from exc
    if not brokers:
        raise TransientError(STAGE, f"no broker answered about {topic}")
    broker = min(brokers)
    try:
        value = _setting(admin, ConfigResource(ResourceType.BROKER, str(broker)), timeout_s)
    except KafkaException as exc:
        raise TransientError(STAGE, exc) from exc
    return value, f"broker {broker}'s default for the topic {topic} (not made yet)"


def _setting(admin: AdminClient, resource: ConfigResource, timeout_s: float) -> int:
    entries = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result(timeout=timeout_s)
    entry = entries.get(SETTING)
    if entry is None or entry.value is None:
        raise TransientError(STAGE, f"{resource} has no {SETTING}")
    return int(entry.value)


def durability_problem(admin: AdminClient, topic: str, expected: int, timeout_s: float) -> str | None:
    """Why ``topic`` cannot be trusted with this exporter's records; None when it can (or when
    nothing is expected). TransientError when the brokers cannot say."""
    if expected <= 0:
        return None
    found, source = min_insync_replicas(admin, topic, timeout_s)
    if found >= expected:
        return None
    return (f"{source} has {SETTING}={found}, below the {expected} this exporter expects (kafka_min_insync_replicas):"
            f" a leader alone in its ISR would acknowledge acks=all writes by itself; records are held in the buffer")
