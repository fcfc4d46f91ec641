"""Backend names as users type them (``--faultline-backend``, ``--backend``)."""

from __future__ import annotations

from harness.backends.base import Backend
from harness.errors import HarnessError

BACKENDS = ("local", "docker", "external")


def make_backend(name: str, *, start_timeout: float = 60.0) -> Backend:
    if name == "local":
        from harness.backends.local import LocalBackend

        return LocalBackend(start_timeout=start_timeout)
    if name == "docker":
        from harness.backends.docker import DockerBackend

        return DockerBackend(start_timeout=start_timeout)
    if name == "external":
        from harness.backends.external import ExternalBackend

        return ExternalBackend(start_timeout=start_timeout)
    raise HarnessError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
