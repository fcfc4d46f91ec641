"""The bundled exporter: Postgres -> Redis Streams buffer -> Kafka and/or files.

The system Faultline hammers. It knows nothing of the harness; the harness knows it only
through its target definition (how to start it, where its sinks and metrics are).
"""
