"""A source that cannot be reached is a TransientError of the reading stage (retried, counted),
never a bare driver error that ends the thread reading it: the metadata poll once died so when
its connect timed out (found by nox -s tests under load, issue 30's refactor)."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from exporter.config import Config
from exporter.errors import TransientError
from exporter.source import Source


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed once the with ends: nothing listens there


def test_a_refused_connect_is_a_transient_error_of_the_stage() -> None:
    config = dataclasses.replace(Config(), postgres_dsn=f"postgresql://x@127.0.0.1:{_closed_port()}/x",
                                 postgres_timeout_s=2.0)
    source = Source(config, stage="source.metadata")
    with pytest.raises(TransientError) as raised:
        source.run(lambda conn: conn.execute("SELECT 1").fetchone())
    assert raised.value.stage == "source.metadata"
