"""The harness's knobs: settings a scenario may turn, by a name of the harness's own.

A target definition's ``[knobs]`` table says which of its settings each knob is; a scenario
names knobs, never a target's variables (``EXPORTER_*`` is the bundled exporter's business), so
the catalogue runs against any exporter that maps the knobs it needs.
"""

from __future__ import annotations

import re

# Each knob and what it means.
KNOBS = {
    "sink": "where the pipeline delivers: kafka or file",
    "delivery_timeout_ms": "how long one send may take before it counts as failed",
    "batch_size": "records read or delivered in one batch",
    "poll_interval_s": "how often the source is polled for new rows",
    "source_timeout_s": "how long a source query may go unanswered",
    "metadata_poll_interval_s": "how often the background metadata poll runs",
    "max_record_bytes": "the largest record the sink is sent",
    "disk_usage_threshold": "disk use above which export jobs are refused",
    "quota_jobs_per_hour": "export jobs a user may submit an hour",
    "source_mode": "what the pipeline reads from the source: rows (inserts) or changes (a change log)",
    "producer_batch_bytes": "the largest batch its Kafka producer puts in one request for a partition (bytes): 1 "
                            "sends every record alone, so acknowledgements may fall between any two",
    "producer_acks": "what its Kafka producer counts as delivered: all (every in-sync replica wrote it) or 1 (the "
                     "partition leader alone did)",
    "producer_idempotence": "whether its Kafka producer is idempotent (a retry after a leader change neither "
                            "duplicates nor reorders): true or false; true needs producer_acks = all",
    "buffer_wait_replicas": "replicas of its buffer that must hold an append before it reads on (Redis WAIT): 0 "
                            "does not wait; while fewer acknowledge, it holds",
    "min_insync_expected": "the fewest in-sync replicas the sink topic must demand (min.insync.replicas) before it "
                           "delivers there: 0 expects nothing; below it, records are held and readiness says why",
    "replica_identity": "the source table's REPLICA IDENTITY (default: a delete's before image holds the key only, "
                        "an update has none; full: both hold the whole old row): set by the harness, any target",
}

# Knobs the harness turns itself (on the servers), whatever the target maps: never a target setting.
HARNESS_KNOBS = frozenset({"replica_identity"})


# What a knob's value may be (values are text, as environment variables are): a whole number or a
# decimal within a range, or one of some words. "nan", "-5" or "s3" is refused when a scenario is
# loaded, not found out by the exporter after the stack started.
KNOB_VALUES: dict[str, tuple[type, float, float] | tuple[str, ...]] = {
    "sink": ("kafka", "file"),
    "delivery_timeout_ms": (int, 1, 3_600_000),
    "batch_size": (int, 1, 1_000_000),
    "poll_interval_s": (float, 0.001, 3600),
    "source_timeout_s": (float, 0.01, 3600),
    "metadata_poll_interval_s": (float, 0.01, 3600),
    "max_record_bytes": (int, 1, 2**31 - 1),
    "disk_usage_threshold": (float, 0.0, 1.0),
    "quota_jobs_per_hour": (int, 0, 1_000_000),
    "source_mode": ("rows", "changes"),
    "producer_batch_bytes": (int, 1, 64 * 1024 * 1024),
    "replica_identity": ("default", "full"),
    "producer_acks": ("all", "1"),
    "producer_idempotence": ("true", "false"),
    "buffer_wait_replicas": (int, 0, 16),
    "min_insync_expected": (int, 0, 16),
}


def knob_problem(name: str, value: str) -> str | None:
    """Why ``value`` is not one ``name`` takes; None when it is."""
    allowed = KNOB_VALUES.get(name)
    if allowed is None or isinstance(allowed[0], str):
        return None if allowed is None or value in allowed else f"must be one of {', '.join(map(str, allowed))}"
    kind, low, high = allowed
    pattern = r"^[0-9]+$" if kind is int else r"^[0-9]+(\.[0-9]+)?$"
    if not re.fullmatch(pattern, value) or not low <= float(value) <= high:
        number = "a whole number" if kind is int else "a decimal number"
        return f"must be {number} within {low}..{high}, not {value!r}"
    return None


def scenario_knobs(sink: str, knobs: dict[str, str]) -> dict[str, str]:
    """The knobs a scenario needs: its own, and the sink when it is not the default (kafka)."""
    return {**({"sink": sink} if sink != "kafka" else {}), **knobs}
