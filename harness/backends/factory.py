"""Backend names as users type them (``--faultline-backend``, ``--backend``)."""

from __future__ import annotations

from harness.backends.base import Backend
from harness.errors import HarnessError

BACKENDS = ("local", "docker", "external")


def make_backend(name: str, *, start_timeout: float = 60.0, logical_replication: bool = False,
                 redis_sentinel: bool = False) -> Backend:
    """``logical_replication``: Postgres with wal_level=logical (a target whose
    ``postgres_logical_replication`` says it reads the WAL); ``redis_sentinel``: a Sentinel
    monitoring Redis (a target whose ``redis_discovery`` is ``sentinel``)."""
    backend: Backend
    if name == "local":
        from harness.backends.local import LocalBackend

        backend = LocalBackend(start_timeout=start_timeout)
    elif name == "docker":
        from harness.backends.docker import DockerBackend

        backend = DockerBackend(start_timeout=start_timeout)
    elif name == "external":
        from harness.backends.external import ExternalBackend

        backend = ExternalBackend(start_timeout=start_timeout)
    else:
        raise HarnessError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    backend.logical_replication = logical_replication
    backend.redis_sentinel = redis_sentinel
    return backend
