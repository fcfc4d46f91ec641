"""redis_failover and postgres_failover without servers: what they need, which backends offer
them, how they are drawn and written, and what they are refused beside (another failover; a
change workload, for a failover that loses the source's own writes)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.backends.docker import DockerBackend
from harness.backends.local import LocalBackend
from harness.catalogue import incident
from harness.judge.ledger import Ledger
from harness.model.capabilities import Need
from harness.model.changes import OPERATIONS, ChangeMix
from harness.scenario import PostgresFailover, RedisFailover, Scenario, ScenarioError, Step, Workload
from harness.search.explore_draw import draw_schedule
from harness.search.explore_plan import ExplorePlan
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


def test_a_postgres_failover_needs_a_standby_and_says_which_kind_it_is() -> None:
    step = PostgresFailover()
    assert step.needs() == {Need.replica("postgres"), Need.link("postgres")}
    assert LocalBackend().unsupported(step) is None
    assert "runs no replica of postgres" in (DockerBackend().unsupported(step) or "")
    assert "shut down cleanly" in PostgresFailover(lag="none").describe()
    assert "fell behind" in PostgresFailover(lag="cut").describe()
    rng = random.Random(2)
    assert {PostgresFailover.draw(rng, World()).lag for _ in range(30)} == {"cut", "none"}


def test_a_failover_that_loses_source_writes_is_refused_beside_a_change_workload() -> None:
    changes = ChangeMix(count=20)
    behind = Step("during", PostgresFailover(lag="cut"), at=0.5, duration=1.0)
    with pytest.raises(ScenarioError, match="loses acknowledged writes from the source"):
        Scenario(name="p", description="d", workload=Workload(records=10, changes=changes), steps=(behind,)).validate()
    planned = Step("during", PostgresFailover(lag="none"), at=0.5, duration=1.0)
    Scenario(name="p", description="d", workload=Workload(records=10, changes=changes), steps=(planned,)).validate()
    Scenario(name="p", description="d", workload=Workload(records=10), steps=(behind,)).validate()


def test_explore_draws_no_change_workload_beside_a_failover_that_loses_source_writes() -> None:
    plan = ExplorePlan(runs=1, changes=OPERATIONS)
    for seed in range(40):
        scenario = draw_schedule(random.Random(seed), {"postgres_failover": PostgresFailover}, plan, f"s{seed}")
        losing = any(s.do.loses_source_writes() for s in scenario.steps)
        assert not (losing and scenario.workload.changes is not None), scenario


def test_writes_the_source_lost_are_judged_neither_way() -> None:
    ledger = Ledger()
    for record_id in range(100, 106):
        ledger.add(record_id, b"\0" * 8, "ok")
    assert ledger.mark_indeterminate([103, 104, 999]) == 2
    assert ledger.mark_indeterminate([103]) == 0  # already so
    assert ledger.ids("indeterminate") == {103, 104} and ledger.ids("ok") == {100, 101, 102, 105}
