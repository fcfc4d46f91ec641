"""A mirakuru executor for one server: port check before start, protocol check after.

mirakuru starts the child in its own session (``setsid``) and tags it with an environment
marker, so stopping kills the whole process group and any child that wandered off it.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mirakuru import Executor
from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired

from harness.errors import PortBusyError, ServiceStartError
from harness.infra.reaper import RECORDER

# Ports are drawn below Linux's ephemeral range (32768-60999 by default), where no outgoing
# connection of any process takes one between our choosing it and the server binding it, and each
# is claimed machine-wide for as long as this process lives: an abstract Unix socket named after
# it, which only one process can hold and the kernel drops when its holder dies (kill -9 too),
# leaving no file behind. Two Faultline processes on one machine never hand out the same port
# (an explore beside another once died with "exporter: port 127.0.0.1:40473 is already in use").
PORT_RANGE = (20_000, 32_000)
CLAIM_PREFIX = "faultline-port-"
_claims: dict[int, socket.socket] = {}
_claim_lock = threading.Lock()
_draw = random.Random()  # seeded by the OS: two processes draw different sequences


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def _claim(port: int) -> socket.socket | None:
    """This process's machine-wide claim on ``port``, or None when another process holds it."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0{CLAIM_PREFIX}{port}")
    except OSError:
        claim.close()
        return None
    return claim


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, claimed for this process: never handed out twice, here or by
    another Faultline process on this machine, until ``release_port``."""
    with _claim_lock:
        for _attempt in range(500):
            port = _draw.randint(*PORT_RANGE)
            if port in _claims:
                continue
            claim = _claim(port)
            if claim is None:
                continue
            if _bindable(host, port):
                _claims[port] = claim
                return port
            claim.close()
    raise PortBusyError("harness", host, 0)


def release_port(port: int) -> None:
    """Give a claimed port back (its server stopped): another run may take it from now on."""
    with _claim_lock:
        claim = _claims.pop(port, None)
    if claim is not None:
        claim.close()


class ServiceExecutor(Executor):
    """Runs one server; ``ready`` speaks the server's own protocol and returns True when it answers."""

    def __init__(self, name: str, command: list[str], *, host: str, port: int,
                 ready: Callable[[], bool], log_path: Path, timeout: float = 60.0,
                 stop_signal: int = signal.SIGTERM, cwd: str | None = None,
                 envvars: dict[str, str] | None = None,
                 popen_kwargs: dict[str, Any] | None = None, expected_returncode: int | None = None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.log_path = log_path
        self._ready = ready
        self.last_check_error: BaseException | None = None
        self._log: IO[str] | None = None
        # expected_returncode: what a clean stop by stop_signal exits with (a JVM answers SIGTERM
        # with 143); anything else on stop is still an error.
        super().__init__(command, cwd=cwd, timeout=timeout, sleep=0.05, stop_signal=stop_signal,
                         expected_returncode=expected_returncode, envvars=envvars, stdin=subprocess.DEVNULL,
                         stdout=None, stderr=None, popen_kwargs=popen_kwargs)

    def pre_start_check(self) -> bool:
        if port_in_use(self.host, self.port):
            raise PortBusyError(self.name, self.host, self.port)
        return False

    def after_start_check(self) -> bool:
        try:
            ok = self._ready()
        except Exception as exc:  # noqa: BLE001 - each client raises its own types while a server boots
            # Kept, not dropped: the start timeout reports the last one.
            self.last_check_error = exc
            return False
        return bool(ok)

    def wait_for(self, wait_for: Callable[[], bool]) -> ServiceExecutor:
        # mirakuru calls this right after spawning, before the readiness wait: the moment to put the
        # process in the state file, so a run killed while it boots still leaves a trace to reap.
        if self.process is not None:
            RECORDER.process(self.process.pid, self.name)
        super().wait_for(wait_for)
        return self

    def start(self) -> ServiceExecutor:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a")
        self._stdout = self._log
        self._stderr = self._log
        try:
            super().start()
        except TimeoutExpired as exc:
            raise ServiceStartError(self.name, f"not ready after {self._timeout:.0f}s on "
                                    f"{self.host}:{self.port}; last check: {self.last_check_error!r}",
                                    str(self.log_path)) from exc
        except ProcessExitedWithError as exc:
            raise ServiceStartError(self.name, f"exited during start with code {exc.exit_code}",
                                    str(self.log_path)) from exc
        return self

    def _clear_process(self) -> None:
        super()._clear_process()
        if self._log is not None:
            self._log.close()
            self._log = None
