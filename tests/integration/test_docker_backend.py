"""The Docker backend offers the same Stack; with no engine it refuses clearly (and the suite skips)."""

from __future__ import annotations

import psycopg
import pytest
import redis

from harness.backends.base import Backend
from harness.backends.docker import DockerBackend, docker_available
from harness.backends.local import LocalBackend
from harness.errors import HarnessError

AVAILABLE, WHY = docker_available()


def test_docker_backend_implements_the_same_interface_as_local() -> None:
    import inspect

    required = {n for n in dir(Backend) if getattr(getattr(Backend, n), "__isabstractmethod__", False)}
    assert required, "Backend declares the interface as abstract methods"
    for backend in (DockerBackend, LocalBackend):
        # Each abstract method is the backend's own, with the same parameters as the interface's.
        for name in required:
            own = getattr(backend, name)
            assert own is not getattr(Backend, name) and not getattr(own, "__isabstractmethod__", False), name
            assert list(inspect.signature(own).parameters) == list(inspect.signature(getattr(Backend, name)).parameters)
    DockerBackend()  # abstract methods left unimplemented would make this raise TypeError


@pytest.mark.skipif(AVAILABLE, reason="a Docker engine is available here")
def test_without_an_engine_start_fails_with_the_reason() -> None:
    with pytest.raises(HarnessError) as info:
        DockerBackend(start_timeout=5).start()
    assert "docker backend:" in str(info.value)


@pytest.mark.docker
@pytest.mark.skipif(not AVAILABLE, reason=f"docker backend needs a Docker engine: {WHY}")
def test_docker_stack_answers_through_proxies_and_down_cuts_the_link() -> None:
    with DockerBackend() as stack:
        with psycopg.connect(stack.postgres_dsn(), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis.from_url(stack.redis_url(), retry=None).ping() is True
        with stack.proxy("redis").down(), pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(stack.redis_url(), retry=None, socket_connect_timeout=2).ping()
