"""Faultline's pytest plugin (registered through the ``pytest11`` entry point).

Pattern after pytest-timeout: options both on the command line and in the ini file, markers
registered in ``pytest_configure``, per-session state in a ``StashKey``. The stack starts once
per session and is reset between tests, which is what keeps a real-server suite fast.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.backends.base import Backend
from harness.backends.factory import BACKENDS, make_backend
from harness.catalogue.scenario import Scenario
from harness.errors import HarnessError
from harness.infra.lifecycle import unwind_on_termination
from harness.infra.stack import Stack
from harness.model.plugins import load_target
from harness.model.target import BUNDLED, TargetDefinition
from harness.play.runner import ScenarioRunner
from harness.report.result import ScenarioResult, Verdict

BACKEND_KEY = pytest.StashKey[Backend]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faultline", "Faultline chaos harness")
    group.addoption("--faultline-backend", choices=BACKENDS, default=None,
                    help="where the servers run: local child processes or Docker (ini: faultline_backend)")
    group.addoption("--faultline-start-timeout", type=float, default=None,
                    help="seconds each server may take to become ready (ini: faultline_start_timeout)")
    parser.addini("faultline_backend", "default backend for the stack fixture", default="local")
    parser.addini("faultline_start_timeout", "seconds each server may take to become ready", default="60")
    parser.addini("faultline_target", "target definition of the exporter under test (default: the bundled one)",
                  default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faultline: the test uses the real service stack")
    config.addinivalue_line("markers", "docker: the test needs a Docker engine (skipped without one)")
    config.addinivalue_line("markers", "slow: long-running; run in nox sessions rather than every CI run")
    # SIGTERM must unwind like Ctrl-C so session teardown stops the servers.
    unwind_on_termination()
    if config.pluginmanager.hasplugin("timeout") and _timeout_method(config) == "thread":
        raise pytest.UsageError("faultline: timeout_method=thread exits without teardown and leaks the "
                                "servers; use timeout_method = signal")


def _timeout_method(config: pytest.Config) -> str:
    return str(config.getoption("timeout_method", None) or config.getini("timeout_method") or "")


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"--faultline-{name.replace('_', '-')}")
    return str(value) if value is not None else str(config.getini(f"faultline_{name}"))


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The real Postgres, Redis, Kafka and Toxiproxy, started once for the session."""
    config = request.config
    # Logical replication on: the same session stack serves the CDC target's tests (Debezium).
    backend = make_backend(_option(config, "backend"), start_timeout=float(_option(config, "start_timeout")),
                           logical_replication=True)
    config.stash[BACKEND_KEY] = backend
    try:
        yield backend.start()
    finally:
        backend.stop()
        del config.stash[BACKEND_KEY]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Even when a test run is interrupted, nothing outlives the session."""
    backend = session.config.stash.get(BACKEND_KEY, None)
    if backend is not None:
        backend.stop()


@pytest.fixture
def fresh_stack(stack: Stack) -> Stack:
    """The session's stack after a reset: no toxics, every link up, every service running."""
    try:
        stack.reset()
    except HarnessError as exc:
        pytest.fail(f"faultline: could not reset the stack before the test: {exc}")
    return stack


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A name unique to this test, for its tables, streams and topics (lowercase, SQL-safe)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:30].strip("_")
    return f"t_{stem}_{digest}"


@pytest.fixture(scope="session")
def faultline_target(request: pytest.FixtureRequest) -> TargetDefinition:
    """The exporter under test, as its target definition describes it."""
    path = request.config.getini("faultline_target")
    return load_target(Path(path) if path else BUNDLED)


@pytest.fixture
def run_scenario(fresh_stack: Stack, faultline_target: TargetDefinition,
                 tmp_path: Path) -> Callable[..., ScenarioResult]:
    """Run a scenario on the session's stack: ``run_scenario(SCENARIO, extra_env={...})``."""

    def run(scenario: Scenario, extra_env: dict[str, str] | None = None) -> ScenarioResult:
        return ScenarioRunner(fresh_stack, faultline_target, scenario, tmp_path, extra_env=extra_env).run()

    return run


def assert_scenario_passed(result: ScenarioResult) -> None:
    """Fail with every violated invariant (or the harness error) spelled out."""
    if result.verdict is Verdict.ERROR:
        pytest.fail(f"scenario {result.name}: harness error: {result.error}", pytrace=False)
    if result.verdict is Verdict.SKIPPED:
        pytest.skip(f"scenario {result.name}: {result.skipped}")
    if result.verdict is not Verdict.PASS:
        lines = "\n".join(f"  {c.name}: {c.detail}" for c in result.violations)
        pytest.fail(f"scenario {result.name} violated:\n{lines}", pytrace=False)
