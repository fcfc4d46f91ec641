"""What a step kind may use of the run it is played in: a typed context, not all of ``Run``.

``harness.play.run.Run`` satisfies it; a step kind (built-in or a team's own) is typed against this
protocol, so the step kinds never import the play floor that plays them (``run`` imports the
scenario model, which imports the step kinds), and what a step may touch is written down here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from harness.infra.faultyfs.mount import FaultyMount
    from harness.infra.proxies.base import ProtocolProxy
    from harness.infra.stack import Stack
    from harness.judge.ledger import Ledger
    from harness.judge.reconcile import BufferEvidence
    from harness.judge.sink_readers import SinkReader
    from harness.judge.sinks import DeadLetterRecord, SinkRecord
    from harness.model.target import TargetDefinition
    from harness.report.journal import Observations
    from harness.report.result import ScenarioResult
    from harness.rig.exporter_process import ExporterProcess, RunContext
    from harness.rig.load import LoadRun
    from harness.rig.tap import BufferTap
    from harness.rig.workload import SourceWriter


class WorkloadView(Protocol):
    @property
    def profile(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def seed(self) -> int: ...


class ScenarioView(Protocol):
    """What a step reads of the scenario it is part of."""

    @property
    def name(self) -> str: ...
    @property
    def sink(self) -> str: ...
    @property
    def during_s(self) -> float: ...
    @property
    def knobs(self) -> Mapping[str, str]: ...
    @property
    def workload(self) -> WorkloadView: ...
    @property
    def fault_seconds(self) -> float: ...


class StepContext(Protocol):
    """The run a step is applied in: the stack and the target, the exporter, the workload's
    writer and ledger, what the run records (journal, observations), and the undo lists a step
    adds to so that cleanup runs whatever happened."""

    stack: Stack
    target: TargetDefinition
    ctx: RunContext
    ledger: Ledger
    writer: SourceWriter
    result: ScenarioResult
    observed: Observations
    tap: BufferTap | None
    loads: list[LoadRun]
    proxies: dict[str, ProtocolProxy]
    env: dict[str, str]  # the exporter's environment, set before it starts (a step's prepare may add)
    closers: list[Callable[[], None]]
    mounted: list[Path]
    immutable: list[Path]
    faulty_mounts: dict[str, FaultyMount]
    planned_kills: int
    # When the timeline's next event is due (time.monotonic()), while an inline action runs: an
    # action that waits (a checkpoint settling) stops waiting by then, so that it never holds a
    # fault's window open past its end. None outside the during phase.
    next_event_due: float | None

    @property
    def scenario(self) -> ScenarioView: ...
    def now(self) -> float: ...
    def live_exporter(self) -> ExporterProcess: ...
    def restart_exporter_beside(self) -> None: ...
    def sink(self, name: str) -> str: ...
    def sink_reader(self, exporter: ExporterProcess) -> SinkReader: ...
    def next_rows(self, n: int) -> list[tuple[str, bytes]]: ...
    def write(self, count: int) -> None: ...
    def record_writes(self, inserted: list[Any], at: float, began: int | None = None) -> None: ...
    def with_running_loads(self, ledger: Ledger) -> Ledger: ...
    def buffer_evidence(self) -> BufferEvidence: ...
    def settled(self, exporter: ExporterProcess) -> tuple[list[SinkRecord], list[DeadLetterRecord], set[int]]: ...
    def plain_records(self, sink: list[SinkRecord]) -> list[SinkRecord]: ...
    def plain_letters(self, letters: list[DeadLetterRecord]) -> list[DeadLetterRecord]: ...
