"""Exceptions of the harness: one root, built-in bases where they fit.

Anything deriving from ``HarnessError`` is trouble in Faultline itself or its
infrastructure (exit code 2), never a verdict about the system under test.
"""

from __future__ import annotations


class FaultlineError(Exception):
    """Root of every exception the harness raises on purpose."""


class HarnessError(FaultlineError):
    """The harness or its infrastructure failed; reported as exit code 2."""


class SetupError(HarnessError):
    """A server binary or runtime is missing or could not be provisioned."""


class ServiceStartError(HarnessError):
    """A service did not start or did not become ready in time."""

    def __init__(self, service: str, message: str, log_path: str | None = None) -> None:
        self.service = service
        self.log_path = log_path
        detail = f"{service}: {message}"
        if log_path:
            detail += f" (log: {log_path})"
        super().__init__(detail)


class PortBusyError(HarnessError, OSError):
    """A port the harness was asked to use is already taken."""

    def __init__(self, service: str, host: str, port: int) -> None:
        self.service = service
        self.port = port
        super().__init__(
            f"{service}: port {host}:{port} is already in use; stop whatever listens "
            f"there or let Faultline choose a free port"
        )


class ToxiproxyError(HarnessError):
    """The Toxiproxy API refused or failed a request."""


class UnknownServiceError(HarnessError, KeyError):
    """A service name that the stack does not know."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])
