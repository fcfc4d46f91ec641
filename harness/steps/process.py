"""Faults on processes: the exporter killed or frozen, a server stopped or killed."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic.dataclasses import dataclass

from harness.infra.stack import SERVICES
from harness.model.capabilities import Need
from harness.steps.base import STRICT, Name, Problem, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext


@step_kind
@dataclass(frozen=True, config=STRICT)
class KillExporter(StepKind):
    """SIGKILL the exporter; it is started again when the step ends."""

    kind_name: ClassVar[str] = "kill_exporter"
    takes_exporter_away: ClassVar[bool] = True

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> KillExporter:
        return cls()

    def describe(self) -> str:
        return "exporter killed (SIGKILL)"

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        exporter = run.live_exporter()
        run.planned_kills += 1
        exporter.kill()
        record.evidence = f"exporter running={exporter.running()}"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        run.restart_exporter_beside()


@step_kind
@dataclass(frozen=True, config=STRICT)
class FreezeExporter(StepKind):
    """SIGSTOP the exporter for the step's duration, then SIGCONT."""

    kind_name: ClassVar[str] = "freeze_exporter"
    takes_exporter_away: ClassVar[bool] = True

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> FreezeExporter:
        return cls()

    def describe(self) -> str:
        return "exporter frozen (SIGSTOP)"

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        run.live_exporter().freeze()
        record.evidence = "SIGSTOP sent to the exporter's process group"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        run.live_exporter().thaw()


@step_kind
@dataclass(frozen=True, config=STRICT)
class RestartService(StepKind):
    """Stop (or kill) a server and start it again when the step ends; ``wipe`` loses its data
    first (Redis without persistence)."""

    kind_name: ClassVar[str] = "restart_service"
    service: Name
    kill: bool = False
    wipe: bool = False

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> RestartService:
        return cls(rng.choice(world.links), kill=rng.random() < 0.5)

    def describe(self) -> str:
        return f"{self.service} {'killed' if self.kill else 'stopped'}" + (" and its data lost" if self.wipe else "")

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.restart(self.service)})

    def check(self) -> Problem | None:
        if self.service not in SERVICES:
            return Problem("service", f"unknown service {self.service!r}; services are {', '.join(SERVICES)}")
        return None

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        (run.stack.kill if self.kill else run.stack.stop)(self.service)
        if self.wipe:
            run.stack.backend.wipe_service_data(self.service)
        record.evidence = f"{self.service} {'killed' if self.kill else 'stopped'}" + (
            ", data wiped" if self.wipe else "")

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        run.stack.start(self.service)


@step_kind
@dataclass(frozen=True, config=STRICT)
class ServiceMoves(StepKind):
    """A server is stopped for the window and comes back on new ports, its proxy following it
    (a broker replaced, a failover to another address): clients that cached its address must
    find it again."""

    kind_name: ClassVar[str] = "service_moves"
    service: Literal["kafka"] = "kafka"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> ServiceMoves:
        return cls()

    def describe(self) -> str:
        return f"{self.service} stopped, back on a new port"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.restart(self.service), Need.move(self.service)})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        before = run.stack.link(self.service).direct.address
        run.stack.stop(self.service)
        record.evidence = f"{self.service} stopped (was at {before})"
        return before

    def remove(self, run: StepContext, handle: str, record: StepRecord) -> None:
        run.stack.backend.start_service_moved(self.service)
        proxy = run.stack.proxy(self.service)
        record.evidence += (f"; back at {run.stack.link(self.service).direct.address}, proxy upstream "
                            f"{proxy.upstream}")
