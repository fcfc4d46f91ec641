"""The harness's own Kafka clients never write librdkafka's lines raw to stderr (an explore's
terminal filled with hundreds of ``%3|...|FAIL|rdkafka#consumer-289|`` while a broker was down):
they go through Python logging, at the level the user chose, and a level that is not one is bad
input (exit 2) before anything starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from harness.errors import HarnessError
from harness.infra import kafka_clients

CLIENT = textwrap.dedent("""
    import logging, sys
    from confluent_kafka.admin import AdminClient
    from harness.infra.kafka_clients import kafka_config, show_kafka_logs
    show_kafka_logs()
    admin = AdminClient(kafka_config("127.0.0.1:%d", **{"reconnect.backoff.ms": 50}))
    try:
        admin.list_topics(timeout=1.5)
    except Exception as exc:
        print("refused:", type(exc).__name__)
    admin.poll(0.5)  # logs queued by the client are handed to Python logging here
""")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client_run(level: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != kafka_clients.LEVEL_ENV}
    if level is not None:
        env[kafka_clients.LEVEL_ENV] = level
    return subprocess.run([sys.executable, "-c", CLIENT % _closed_port()], capture_output=True, text=True,
                          timeout=60, env=env)


def test_a_client_refused_by_a_dead_broker_writes_nothing_raw() -> None:
    done = _client_run(None)
    assert "refused:" in done.stdout, done.stderr[-1500:]
    assert "rdkafka" not in done.stderr and "%3|" not in done.stderr


def test_the_chosen_level_shows_them_through_python_logging() -> None:
    done = _client_run("debug")
    assert "faultline: kafka client" in done.stderr and "Connection refused" in done.stderr, done.stderr[-1500:]
    assert "%3|" not in done.stderr  # the logger's lines, not librdkafka's own


def test_a_level_that_is_not_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kafka_clients.LEVEL_ENV, "loud")
    with pytest.raises(HarnessError, match="FAULTLINE_KAFKA_LOG_LEVEL='LOUD' is not a level"):
        kafka_clients.kafka_log_level()
    done = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, kafka_clients.LEVEL_ENV: "loud"})
    assert done.returncode == 2 and "is not a level" in done.stderr
