"""Ports, provisioning lookups and their error messages, without starting the stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import PortBusyError, SetupError
from harness.provision import require
from harness.services.executor import PORT_RANGE, ServiceExecutor, free_port, release_port

CLAIMER = """
import sys, time
from harness.services.executor import free_port
ports = [free_port() for _ in range(300)]
print(" ".join(map(str, ports)), flush=True)
sys.stdin.readline()  # holds its claims until told to go
"""


def test_free_ports_are_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(PORT_RANGE[0] <= p <= PORT_RANGE[1] for p in ports)  # never where outgoing connections draw
    for port in ports:
        release_port(port)


def test_two_processes_never_hand_out_the_same_port() -> None:
    """An explore beside another died on "exporter: port ... is already in use": each process
    drew its ports alone. The claims are machine-wide now, and die with their holder."""
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    try:
        drawn = [set(map(int, c.stdout.readline().split())) for c in claimers]  # type: ignore[union-attr]
        assert len(drawn[0]) == len(drawn[1]) == 300
        assert drawn[0].isdisjoint(drawn[1])
        mine = {free_port() for _ in range(300)}
        assert mine.isdisjoint(drawn[0] | drawn[1])  # and none of theirs here while they hold them
    finally:
        for claimer in claimers:
            claimer.communicate("go\n", timeout=30)
    for port in mine:
        release_port(port)


def test_a_busy_port_is_named_in_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        executor = ServiceExecutor("redis", ["true"], host="127.0.0.1", port=port, ready=lambda: True,
                                   log_path=tmp_path / "x.log")
        with pytest.raises(PortBusyError) as info:
            executor.start()
    assert f"127.0.0.1:{port} is already in use" in str(info.value)
    assert "redis" in str(info.value)
    assert executor.process is None  # nothing was started


def test_a_missing_toxiproxy_binary_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOXIPROXY_SERVER", "/nonexistent/toxiproxy-server")
    with pytest.raises(SetupError) as info:
        require("toxiproxy")
    assert "TOXIPROXY_SERVER" in str(info.value)


def test_setup_check_reports_missing_and_changes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAULTLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path / "no-kafka"))
    monkeypatch.setenv("TOXIPROXY_SERVER", str(tmp_path / "no-toxiproxy"))
    result = CliRunner().invoke(main, ["setup", "--check", "--json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["kafka"] is None and report["toxiproxy"] is None
    assert report["postgres"]["path"]  # present on every machine that ran `faultline setup`
    assert not (tmp_path / "cache").exists()


def test_kafka_home_without_jars_is_refused_with_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["setup"])
    assert result.exit_code == 2
    assert f"KAFKA_HOME={tmp_path}" in result.output


def test_secrets_are_written_owner_only_from_the_moment_they_exist(tmp_path: Path) -> None:
    import os
    import stat

    from harness.services.servers import write_secret

    old = os.umask(0)  # even with a permissive umask: the mode is set when the file is created
    try:
        write_secret(tmp_path / "pwfile", "s3cret\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "pwfile").stat().st_mode) == 0o600
    assert (tmp_path / "pwfile").read_text() == "s3cret\n"
    with pytest.raises(FileExistsError):  # never written through a file someone placed there first
        write_secret(tmp_path / "pwfile", "other")


def test_stack_directories_are_private(tmp_path: Path) -> None:
    import stat

    from harness.services.servers import private_directory

    private = tmp_path / "stack"
    private.mkdir(mode=0o755)
    private_directory(private)
    # As root others may pass through (to Postgres's own directory) but list nothing.
    assert stat.S_IMODE(private.stat().st_mode) == (0o711 if os.geteuid() == 0 else 0o700)
    assert private.stat().st_uid == os.geteuid()  # the user's own, not the unprivileged user's
    from harness.services.servers import RedisServer

    server = RedisServer("redis", private / "redis", 1)
    server.prepare()
    assert stat.S_IMODE(server.root.stat().st_mode) == 0o700 and server.root.stat().st_uid == os.geteuid()
