"""Readiness probes that speak each server's own protocol (an open port proves little)."""

from __future__ import annotations

import httpx
import psycopg
import redis
from confluent_kafka.admin import AdminClient

from harness.infra.kafka_clients import kafka_config
from harness.infra.redis_client import no_retry


def postgres_ready(host: str, port: int, user: str, password: str, dbname: str,
                   timeout: float = 2.0) -> bool:
    with psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                         connect_timeout=max(1, int(timeout))) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def redis_ready(host: str, port: int, password: str, timeout: float = 2.0) -> bool:
    # No retries: a probe must see the failure, not redis-py's silent retry.
    client = redis.Redis(host=host, port=port, password=password, socket_timeout=timeout,
                         socket_connect_timeout=timeout, retry=no_retry())
    try:
        return client.ping() is True
    finally:
        client.close()


def kafka_ready(bootstrap: str, timeout: float = 2.0) -> bool:
    """A metadata request that names at least one broker."""
    admin = AdminClient(kafka_config(bootstrap, **{"socket.connection.setup.timeout.ms": int(timeout * 1000)}))
    metadata = admin.list_topics(timeout=timeout)
    return len(metadata.brokers) >= 1


def toxiproxy_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    response = httpx.get(f"http://{host}:{port}/version", timeout=timeout)
    return response.status_code == 200 and bool(response.text.strip())
