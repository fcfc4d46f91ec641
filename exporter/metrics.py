"""Prometheus metrics, in one registry so the API serves exactly these."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
background_failures = Counter("exporter_background_failures_total", "Skipped passes of background tasks",
                              ["task"], registry=REGISTRY)
buffer_length = Gauge("exporter_buffer_length", "Entries waiting in the buffer", registry=REGISTRY)
in_flight = Gauge("exporter_in_flight", "Records handed to a sink and not yet confirmed", registry=REGISTRY)
paused = Gauge("exporter_paused", "1 while intake is paused", registry=REGISTRY)
export_job_duration = Histogram("exporter_export_job_duration_seconds", "Batch export job duration",
                                ["state"], registry=REGISTRY)
export_rows = Counter("exporter_export_rows_total", "Rows handled by batch export jobs", ["outcome"],
                      registry=REGISTRY)
