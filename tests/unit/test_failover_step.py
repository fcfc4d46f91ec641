"""redis_failover without servers: what it needs, which backends offer it, how it is drawn and
written, and that it is refused beside another failover."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.backends.docker import DockerBackend
from harness.backends.local import LocalBackend
from harness.catalogue import incident
from harness.model.capabilities import Need
from harness.scenario import RedisFailover, Scenario, ScenarioError, Step, Workload
from harness.steps import World


def test_it_needs_a_replica_of_redis_which_only_the_local_backend_runs() -> None:
    step = RedisFailover()
    assert step.needs() == {Need.replica("redis"), Need.link("redis")}
    assert LocalBackend().unsupported(step) is None
    assert "runs no replica of redis" in (DockerBackend().unsupported(step) or "")


def test_it_is_drawn_both_ways_and_described_as_it_is() -> None:
    rng = random.Random(1)
    drawn = {RedisFailover.draw(rng, World()).lag for _ in range(40)}
    assert drawn == {"cut", "none"}
    assert RedisFailover(lag="cut").describe() == "redis failed over to a replica that fell behind"
    assert RedisFailover(lag="none").describe() == "redis failed over to a replica in sync"


def test_two_failovers_at_once_are_refused_and_one_round_trips(tmp_path: Path) -> None:
    steps = (Step("during", RedisFailover(), at=0.5, duration=2.0), Step("during", RedisFailover(lag="none"),
                                                                          at=1.0, duration=2.0))
    with pytest.raises(ScenarioError, match="overlaps step 1"):
        Scenario(name="f", description="d", workload=Workload(records=10), steps=steps).validate()
    one = Scenario(name="f", description="d", workload=Workload(records=10), steps=steps[:1]).validate()
    assert incident.load(incident.write(one, tmp_path / "f.toml")) == one
    with pytest.raises(Exception, match="lag"):
        RedisFailover(lag="later")  # type: ignore[arg-type]
