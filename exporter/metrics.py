"""Prometheus metrics, in one registry so the API serves exactly these.

The reader and deliverer run in processes of their own, so metrics use prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``python -m exporter`` before this
module is imported): every process writes its samples to files there, and the API sums them.
Counters of a worker that was restarted keep counting from where they were.
"""

from __future__ import annotations

import glob
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REGISTRY = CollectorRegistry(auto_describe=True)

records_read = Counter("exporter_records_read_total", "Rows read from the source", registry=REGISTRY)
records_buffered = Counter("exporter_records_buffered_total", "Records appended to the buffer", registry=REGISTRY)
records_delivered = Counter("exporter_records_delivered_total", "Records the sink confirmed", ["sink"],
                            registry=REGISTRY)
records_dead_lettered = Counter("exporter_records_dead_lettered_total", "Records sent to the dead-letter stream",
                                ["reason"], registry=REGISTRY)
send_failures = Counter("exporter_send_failures_total", "Failed sends to a sink (each attempt)", ["sink"],
                        registry=REGISTRY)
retries = Counter("exporter_retries_total", "Retried operations", ["stage"], registry=REGISTRY)
source_settle_wait = Counter("exporter_source_settle_wait_seconds_total",
                             "Time the reader waited for older open transactions before reading past later commits",
                             registry=REGISTRY)
source_settle_timeouts = Counter("exporter_source_settle_timeouts_total",
                                 "Times the reader gave up waiting for an open transaction and read past it",
                                 registry=REGISTRY)
background_failures = Counter("exporter_background_failures_total", "Skipped passes of background tasks",
                              ["task"], registry=REGISTRY)
buffer_length = Gauge("exporter_buffer_length", "Stream entries (packs of records) waiting in the buffer",
                      registry=REGISTRY,
                      multiprocess_mode="mostrecent")
in_flight = Gauge("exporter_in_flight", "Records handed to a sink and not yet confirmed", registry=REGISTRY,
                  multiprocess_mode="livesum")
paused = Gauge("exporter_paused", "1 while intake is paused", registry=REGISTRY, multiprocess_mode="mostrecent")
worker_restarts = Counter("exporter_worker_restarts_total", "Reader or deliverer processes restarted after dying",
                          ["worker"], registry=REGISTRY)
export_job_duration = Histogram("exporter_export_job_duration_seconds", "Batch export job duration",
                                ["state"], registry=REGISTRY)
export_rows = Counter("exporter_export_rows_total", "Rows handled by batch export jobs", ["outcome"],
                      registry=REGISTRY)


# The series each counter has from the first scrape, at 0: a labelled counter otherwise appears
# only once something is counted, and an alert on a misspelt name cannot be told from a quiet
# one (faultline doctor reported them unconfirmed). Prometheus' advice: initialise known labels.
DEAD_LETTER_REASONS = ("malformed_row", "too_large", "unencodable", "rejected_by_broker")


def expose_from_start(sinks: tuple[str, ...], workers: tuple[str, ...]) -> None:
    for sink in sinks:
        records_delivered.labels(sink=sink)
        send_failures.labels(sink=sink)
    for worker in workers:
        worker_restarts.labels(worker=worker)
    for reason in DEAD_LETTER_REASONS:
        records_dead_lettered.labels(reason=reason)
    background_failures.labels(task="metadata_poll")
    retries.labels(stage="source.read")  # the first retry a source outage counts


class _SettledFiles:
    """MultiProcessCollector over the settled sample files only.

    A worker that is starting creates its file empty and sizes it a moment later; the stock
    collector fails the whole scrape on such a file. Skipping it loses nothing: it holds no
    sample yet.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        files = [f for f in glob.glob(os.path.join(self.directory, "*.db")) if os.path.getsize(f) >= 8]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def exposition() -> bytes:
    """The text format of every process's samples (or this process's, outside multiprocess mode)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        registry.register(_SettledFiles(directory))
        return generate_latest(registry)
    return generate_latest(REGISTRY)
