"""A target's health as evidence: a process that answers is healthy, one that exited is not, and
asking never raises (found against Debezium Server, which exits when its replication slot is gone
after a Postgres failover: the scenario became a harness error instead of a judged failure)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.model.target import BUNDLED, TargetDefinition
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.services.executor import free_port


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        return  # quiet: the test reads the answers, not the server's log


@pytest.fixture
def answering() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _exporter(tmp_path: Path, port: int) -> ExporterProcess:
    ctx = RunContext(None, "n", tmp_path, http_port=port)  # type: ignore[arg-type]  # no server is asked
    return ExporterProcess(TargetDefinition.load(BUNDLED), ctx)


def test_a_target_that_answers_its_ready_path_is_healthy(tmp_path: Path, answering: int) -> None:
    assert _exporter(tmp_path, answering).healthy() is True


def test_a_target_that_exited_is_unhealthy_not_a_harness_error(tmp_path: Path) -> None:
    assert _exporter(tmp_path, free_port()).healthy(timeout=1) is False  # nothing listens: refused
