"""The harness's knobs: settings a scenario may turn, by a name of the harness's own.

A target definition's ``[knobs]`` table says which of its settings each knob is; a scenario
names knobs, never a target's variables (``EXPORTER_*`` is the bundled exporter's business), so
the catalogue runs against any exporter that maps the knobs it needs.
"""

from __future__ import annotations

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
}


def scenario_knobs(sink: str, knobs: dict[str, str]) -> dict[str, str]:
    """The knobs a scenario needs: its own, and the sink when it is not the default (kafka)."""
    return {**({"sink": sink} if sink != "kafka" else {}), **knobs}
