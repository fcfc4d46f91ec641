"""What a step needs is typed (``Need``): the backend, the target and explore read kinds and names,
never "kind:name" strings, and a team's kind that still returns strings is refused where it is made."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic.dataclasses import dataclass

from harness.backends.local import LocalBackend
from harness.model.capabilities import Need, NeedKind
from harness.scenario import (
    DiskFull,
    KafkaQuota,
    LinkDown,
    Pause,
    RedisRefuseWrites,
    RestartService,
    ScenarioError,
    ServiceMoves,
    Step,
    StepKind,
)
from harness.search.explore_plan import clash, services, takes_away
from harness.steps.base import STRICT, Role


def test_needs_say_what_they_are_about() -> None:
    assert Need.link("kafka").server == "kafka" and str(Need.link("kafka")) == "link:kafka"
    assert Need.api("exports").server is None and Need.root().server is None and str(Need.root()) == "root"
    assert Need.restart("redis").takes_server_away and not Need.admin("redis").takes_server_away
    assert Need.own("gpu").kind is NeedKind.OWN


def test_explore_reads_servers_from_typed_needs() -> None:
    assert services(RedisRefuseWrites("misconf")) == {"redis"}
    assert services(KafkaQuota(producer_byte_rate=1024)) == {"kafka"}  # the tool and credentials are no server
    assert takes_away(ServiceMoves("kafka")) == {"kafka"} and takes_away(LinkDown("kafka")) == frozenset()
    assert clash(RestartService("kafka"), KafkaQuota(producer_byte_rate=1024))  # a quota on a stopped broker
    assert not clash(RestartService("redis"), KafkaQuota(producer_byte_rate=1024))


class _NoTools(LocalBackend):
    tools: frozenset[str] = frozenset()
    movable: frozenset[str] = frozenset()


def test_a_backend_lacks_typed_capabilities() -> None:
    backend = _NoTools()
    assert "cannot run kafka-configs" in (backend.lacks(Need.tool("kafka-configs")) or "")
    assert "cannot bring kafka back" in (backend.lacks(Need.move("kafka")) or "")
    assert backend.lacks(Need.own("gpu")) is None  # a team's own: offered unless its backend says not
    assert "kafka-configs" in (backend.unsupported(KafkaQuota(producer_byte_rate=1024)) or "")
    assert backend.unsupported(Pause(grace_s=2.0)) is None and backend.unsupported(DiskFull()) is None


def test_file_system_faults_are_skipped_on_a_machine_without_dev_fuse(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """A container started without /dev/fuse skips the file-system faults (with the reason)
    instead of failing them when the mount is tried."""
    import harness.backends.base as base
    from harness.scenario import CrashLosingUnsynced, FileError

    backend = _NoTools()
    monkeypatch.setattr(base, "DEVICES", tmp_path)
    for step in (FileError(directory="file_sink", operation="fsync"), CrashLosingUnsynced()):
        assert f"no {tmp_path / 'fuse'}" in (backend.unsupported(step) or ""), step.describe()
    assert backend.unsupported(DiskFull()) is None  # the other disk faults need no device
    (tmp_path / "fuse").write_bytes(b"")
    (tmp_path / "fuse").chmod(0o600)
    assert backend.lacks(Need.device("fuse")) is None
    assert backend.unsupported(FileError(directory="file_sink", operation="fsync")) is None


def test_every_built_in_kind_needs_typed_capabilities() -> None:
    for step in (DiskFull(), LinkDown("redis"), Pause(grace_s=2.0), RedisRefuseWrites("misconf"),
                 ServiceMoves("kafka"), KafkaQuota(producer_byte_rate=1024)):
        assert step.needs() and all(isinstance(n, Need) for n in step.needs()), step.describe()


@dataclass(frozen=True, config=STRICT)
class _StringNeeds(StepKind):
    kind_name: ClassVar[str] = "string_needs_for_test"
    role: ClassVar[Role] = "fault"

    def describe(self) -> str:
        return "a team's kind with string needs"

    def needs(self) -> frozenset[Need]:
        return frozenset({"link:kafka"})  # type: ignore[arg-type]  # what the test refuses


def test_a_kind_with_string_needs_is_refused_where_it_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.steps import registry
    monkeypatch.setitem(registry._REGISTRY, _StringNeeds.kind_name, _StringNeeds)
    with pytest.raises((ScenarioError, ValueError), match="must return a frozenset of .*Need.*'link:kafka'"):
        Step(phase="during", do=_StringNeeds())


def test_a_clock_jump_needs_the_shim_preloaded_and_a_target_that_allows_it(tmp_path: Path) -> None:
    from harness.model.target import BUNDLED, TargetDefinition
    from harness.scenario import ClockJump

    step = ClockJump(seconds=-3600)
    assert step.needs() == {Need.preload("wallclock")} and step.check() is None
    assert ClockJump(seconds=0).check() is not None  # no jump is no fault
    assert TargetDefinition.load(BUNDLED).unsupported(step) is None
    static = tmp_path / "static.toml"
    static.write_text(BUNDLED.read_text().replace("[env]", "preload = false\n\n[env]", 1))
    assert "cannot have wallclock preloaded" in (TargetDefinition.load(static).unsupported(step) or "")


def test_a_run_whose_every_fault_met_no_request_is_skipped_not_passed() -> None:
    from types import SimpleNamespace

    from harness.play.runner import ScenarioRunner
    from harness.report.journal import FaultReach, Observations
    from harness.scenario import RedisCommandError

    steps = (Step("during", RedisCommandError(command="GET"), at=0.5, duration=1.0),
             Step("during", RedisCommandError(command="XADD"), at=2.0, duration=1.0))
    starved = [FaultReach("redis GET", "redis", 0, 0, True), FaultReach("redis XADD", "redis", 3, 0, True)]

    def why(reaches: list[FaultReach], scenario_steps: tuple[Step, ...] = steps) -> str | None:
        runner = SimpleNamespace(run_=SimpleNamespace(observed=Observations(reaches=reaches)),
                                 scenario=SimpleNamespace(steps=scenario_steps))
        return ScenarioRunner._only_starved_faults(runner)  # type: ignore[arg-type]

    assert "nothing was tested" in (why(starved) or "") and "redis XADD: 3 matched" in (why(starved) or "")
    assert why([starved[0], FaultReach("redis XADD", "redis", 3, 1, True)]) is None  # one met: judged
    assert why(starved[:1], steps + (Step("during", LinkDown("kafka"), at=1.0, duration=1.0),)) is None
