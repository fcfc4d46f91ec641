"""A target that finds its buffer's Redis primary through Sentinel, on real servers: the local
backend runs a Sentinel behind a proxy, monitoring the primary through its client proxy; a
failover is the Sentinel's, and the bundled exporter (``redis_sentinels``) follows it. The
replica's lag is made by switching its replication user off on the primary, not by a proxy the
Sentinel would route around."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.factory import make_backend
from harness.backends.redis_replica import replication
from harness.catalogue.registry import discover
from harness.errors import HarnessError
from harness.infra.stack import Stack
from harness.model.plugins import load_target
from harness.model.target import TargetDefinition
from harness.paths import shipped_dir
from harness.play.runner import ScenarioRunner
from harness.report.result import ScenarioResult
from harness.scenario import Expect, LinkDown, RedisFailover, Scenario, Step, Workload

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def sentinel_stack() -> Iterator[Stack]:
    backend = make_backend("local", redis_sentinel=True)
    try:
        yield backend.start()
    finally:
        backend.stop()


@pytest.fixture(scope="module")
def sentinel_target() -> TargetDefinition:
    target = load_target(shipped_dir() / "targets" / "bundled-exporter-sentinel.toml")
    assert target.redis_discovery == "sentinel"
    return target


def _sentinel_node(stack: Stack) -> dict:  # type: ignore[type-arg]
    node = stack.backend.topology()["nodes"]["redis-sentinel"]
    assert node["running"]
    return node


def _failover_step(result: ScenarioResult) -> dict:  # type: ignore[type-arg]
    return next(s.result for s in result.steps if s.fails_over == "redis" and s.result is not None)


def test_the_exporter_follows_a_sentinel_failover_to_a_replica_that_fell_behind(
        sentinel_stack: Stack, sentinel_target: TargetDefinition, tmp_path: Path) -> None:
    redis_proxy = sentinel_stack.redis.proxied.address
    assert _sentinel_node(sentinel_stack)["primary"] == redis_proxy
    sentinel_stack.reset()
    # redis_failover_behind, lighter: the buffer holds what Kafka's cut keeps from the sink, and
    # the replica misses the appends made while its replication user is off.
    behind = Scenario(name="sentinel_failover_behind", description="Sentinel fails over to a replica behind",
                      workload=Workload(records=1000, chunk=100, meet_faults=100),
                      steps=(Step("during", LinkDown("kafka"), at=0.2, duration=2.0),
                             Step("during", RedisFailover(lag="cut"), at=0.3, duration=1.5)),
                      expect=Expect(), during_s=2.5)
    result = ScenarioRunner(sentinel_stack, sentinel_target, behind, tmp_path).run()
    assert result.verdict == "pass", [c.detail for c in result.violations] or result.error
    failover = _failover_step(result)
    # The Sentinel handed out the replica's own proxy, and the replica had missed writes: the cut held.
    assert failover["sentinel_before"] == redis_proxy and failover["sentinel_after"] != redis_proxy
    assert failover["gap_bytes"] > 0
    # Put away by the runner's reset: the Sentinel monitors the original primary again, alone.
    sentinel_stack.reset()
    node = _sentinel_node(sentinel_stack)
    assert node["primary"] == redis_proxy and node["replicas"] == []
    assert replication(sentinel_stack.redis.direct.port, sentinel_stack.redis_password)["role"] == "master"


@pytest.mark.slow
def test_a_sentinel_failover_behind_catches_the_ignored_rewind(
        sentinel_stack: Stack, sentinel_target: TargetDefinition, tmp_path: Path) -> None:
    sentinel_stack.reset()
    result = ScenarioRunner(sentinel_stack, sentinel_target, discover()["redis_failover_behind"], tmp_path,
                            extra_env={"FAULTLINE_EXPORTER_DEFECT": "checkpoint_rewind_ignored"}).run()
    assert result.verdict == "fail" and result.ledger is not None and result.ledger.count("lost") > 0
    assert _failover_step(result)["gap_bytes"] > 0


def test_backends_without_a_sentinel_refuse_a_target_that_needs_one() -> None:
    backend = make_backend("docker", redis_sentinel=True)
    with pytest.raises(HarnessError, match="runs no Redis Sentinel"):
        backend.start()
