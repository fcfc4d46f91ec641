"""The scenario model: a workload, a timeline of fault steps and actions, and expectations.

A scenario is data. ``scenarios/<name>.py`` defines ``SCENARIO = Scenario(...)``; the runner
plays its timeline (phases before, during, after, as in chaostoolkit's journal), records when
every step was applied and removed with evidence that it took effect, and checks the
expectations. ``catches`` names the seeded exporter defects the scenario exists to catch;
the harness never reads which defect is on, it only judges behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from harness.errors import HarnessError
from harness.stack import LINKS
from harness.toxiproxy import validate_toxic

PHASES = ("before", "during", "after")


class ScenarioError(HarnessError):
    """A scenario definition is invalid; the message names the scenario and the field."""


# -- faults ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Toxic:
    link: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        attrs = ",".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return f"{self.type}({attrs}) on {self.link} {self.stream}" + (
            f" toxicity={self.toxicity}" if self.toxicity != 1.0 else "")


@dataclass(frozen=True)
class LinkDown:
    link: str

    def describe(self) -> str:
        return f"{self.link} link down"


@dataclass(frozen=True)
class KillExporter:
    """SIGKILL the exporter; it is started again when the step ends."""

    def describe(self) -> str:
        return "exporter killed (SIGKILL)"


@dataclass(frozen=True)
class FreezeExporter:
    """SIGSTOP the exporter for the step's duration, then SIGCONT."""

    def describe(self) -> str:
        return "exporter frozen (SIGSTOP)"


@dataclass(frozen=True)
class RestartService:
    """Stop (or kill) a server and start it again when the step ends; ``wipe`` loses its data
    first (Redis without persistence)."""

    service: str
    kill: bool = False
    wipe: bool = False

    def describe(self) -> str:
        return f"{self.service} {'killed' if self.kill else 'stopped'}" + (" and its data lost" if self.wipe else "")


DIRECTORIES = ("export_dir", "file_sink")


@dataclass(frozen=True)
class DiskFull:
    """A directory of the exporter's (``export_dir`` or the ``file_sink``'s) lives on a tmpfs of
    ``size_kib`` for the whole scenario (mounted before the exporter starts). The step fills it
    with a filler file until ``fill`` of it is in use (0: the exporter's own writes fill it);
    when the step ends the filler goes and the tmpfs grows: the space is freed, the data stays."""

    size_kib: int = 128
    directory: str = "export_dir"
    fill: float = 0.0

    def describe(self) -> str:
        return f"{self.directory} disk of {self.size_kib} KiB" + (f" filled to {self.fill:.0%}" if self.fill else
                                                                 " (filling up)")


@dataclass(frozen=True)
class ReadOnlyDir:
    """Writes into a directory of the exporter's are refused (immutable attribute: even root gets EPERM)."""

    directory: str = "export_dir"

    def describe(self) -> str:
        return f"{self.directory} refuses writes (permission denied)"


@dataclass(frozen=True)
class HeldTransaction:
    """A writer takes ids for ``records`` rows in a transaction it keeps open for the window, while
    other writers commit ``then_write`` rows with higher ids at once (and the workload goes on);
    the transaction commits when the window ends. Commits out of id order: a reader that pages by
    id alone moves past the held ids before they are visible and never sees them."""

    records: int = 5
    then_write: int = 50

    def describe(self) -> str:
        return f"transaction of {self.records} rows held open while {self.then_write} later rows commit"


Fault = Toxic | LinkDown | KillExporter | FreezeExporter | RestartService | DiskFull | ReadOnlyDir | HeldTransaction


# -- load --------------------------------------------------------------------------------------
LOAD_KINDS = ("source", "api")


@dataclass(frozen=True)
class Load:
    """Locust load for the step's window, run as a subprocess. ``kind`` "source": users write
    rows of ``rows_per_write`` into the source table (every write goes into the ledger with its
    outcome); "api": users submit small export jobs and poll them. ``workers`` > 0 runs Locust's
    distributed mode (a master and that many worker processes)."""

    kind: str = "source"
    users: int = 4
    spawn_rate: float = 10.0
    wait_s: float = 0.05
    rows_per_write: int = 10
    workers: int = 0

    def describe(self) -> str:
        return f"locust {self.kind} load: {self.users} users" + (f" on {self.workers} workers" if self.workers else "")


# -- actions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pause:
    grace_s: float

    def describe(self) -> str:
        return f"pause (grace {self.grace_s}s)"


@dataclass(frozen=True)
class Resume:
    def describe(self) -> str:
        return "resume"


@dataclass(frozen=True)
class Export:
    """Submit a batch export job and wait for it; ``expect_state`` is what a correct exporter reaches."""

    name: str
    encoding: str = "utf-8"
    format: str = "jsonl"
    expect_state: str = "completed"

    def describe(self) -> str:
        return f"export job {self.name} ({self.format}, {self.encoding})"


@dataclass(frozen=True)
class Write:
    """Write more records of the scenario's profile during a phase."""

    records: int

    def describe(self) -> str:
        return f"write {self.records} records"


@dataclass(frozen=True)
class ExportBurst:
    """Submit ``jobs`` export jobs at once for each of ``users``; a correct exporter accepts
    ``accepted_per_user`` of each user's (the rest 429, or all 503 when the disk guard refuses)
    and completes every accepted one."""

    jobs: int
    users: int = 2
    accepted_per_user: int = 0
    refused_status: int = 429

    def describe(self) -> str:
        return f"burst of {self.jobs} export jobs for each of {self.users} users"


@dataclass(frozen=True)
class Checkpoint:
    """Reconcile mid-run: wait up to ``within_s`` for every record written so far to reach a
    sink or the dead-letter stream, then record what is delivered, in flight or missing (soaks
    place one after each quiet period; the final reconciliation still gives the verdict)."""

    within_s: float = 10.0

    def describe(self) -> str:
        return "checkpoint reconciliation"


Action = Pause | Resume | Export | Write | ExportBurst | Checkpoint
ACTIONS = (Pause, Resume, Export, Write, ExportBurst, Checkpoint)


@dataclass(frozen=True)
class Step:
    phase: str
    do: Fault | Action
    at: float = 0.0
    duration: float | None = None  # faults only; None = until the phase ends

    def describe(self) -> str:
        return self.do.describe()


@dataclass(frozen=True)
class Workload:
    records: int = 400
    profile: str = "ascii"
    size: int = 200
    seed: int = 1
    chunk: int = 100
    before_fraction: float = 0.5  # of the records, written in the before phase (steady state)


@dataclass(frozen=True)
class Expect:
    no_loss: bool = True
    no_corruption: bool = True
    dead_letters_have_reasons: bool = True
    errors_surfaced: bool = False
    process_alive: bool = True
    pause_within_grace: bool = False
    metrics_agree: bool = True
    recovered_within_s: float = 60.0
    dead_lettered_at_least: int = 0
    no_resource_leak: bool = False  # sample the exporter's RSS, files, threads, connections; judge trends


@dataclass(frozen=True)
class Reproduction:
    """How often an incident failed the same way when it was confirmed, and with what: a rate
    below 100% means a replay that passes does not prove the bug gone."""

    failed: int
    runs: int
    violates: tuple[str, ...] = ()
    faultline_version: str = ""
    target: str = ""
    servers: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    measured_at: str = ""
    defect: str | None = None  # the seeded defect it was confirmed against, when not in exporter_env

    @property
    def rate(self) -> str:
        return f"{self.failed}/{self.runs}"

    def validate(self) -> Reproduction:
        if not (1 <= self.runs <= 10_000 and 0 <= self.failed <= self.runs):
            raise ScenarioError(f"reproduced must be 'failed/runs' with 0 <= failed <= runs <= 10000, "
                                f"not {self.rate!r}")
        return self


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    workload: Workload = Workload()
    steps: tuple[Step, ...] = ()
    expect: Expect = Expect()
    catches: tuple[str, ...] = ()
    incident: str | None = None
    exporter_env: dict[str, str] = field(default_factory=dict)
    during_s: float = 3.0  # how long the during phase lasts at least
    sink: str = "kafka"  # which of the target's sinks the pipeline delivers to: kafka_topic or file_sink
    # What an incident file says it was confirmed with; not part of what is run (nor compared).
    reproduction: Reproduction | None = field(default=None, compare=False)

    def validate(self) -> Scenario:
        where = f"scenario {self.name!r}"
        if not self.name.replace("_", "").isalnum():
            raise ScenarioError(f"{where}: name must be letters, digits and underscores")
        if not self.description:
            raise ScenarioError(f"{where}: description is empty")
        if self.sink not in ("kafka", "file"):
            raise ScenarioError(f"{where}: sink must be 'kafka' or 'file', not {self.sink!r}")
        if self.workload.records < 0 or self.workload.chunk <= 0:
            raise ScenarioError(f"{where}: workload records must be >= 0 and chunk > 0")
        if not 0 <= self.workload.before_fraction <= 1:
            raise ScenarioError(f"{where}: workload before_fraction must be within [0, 1]")
        for n, step in enumerate(self.steps):
            at = f"{where}: step {n} ({type(step.do).__name__})"
            if step.phase not in PHASES:
                raise ScenarioError(f"{at}: phase must be one of {PHASES}, not {step.phase!r}")
            if step.at < 0 or (step.duration is not None and step.duration <= 0):
                raise ScenarioError(f"{at}: at must be >= 0 and duration > 0")
            do: Any = step.do
            if step.phase != "during" and not isinstance(do, ACTIONS):
                raise ScenarioError(f"{at}: faults belong in the 'during' phase, not {step.phase!r}")
            if isinstance(do, (Toxic, LinkDown)) and do.link not in LINKS:
                raise ScenarioError(f"{at}: unknown link {do.link!r}; links are {', '.join(LINKS)}")
            if isinstance(do, (DiskFull, ReadOnlyDir)) and do.directory not in DIRECTORIES:
                raise ScenarioError(f"{at}: directory must be one of {DIRECTORIES}, not {do.directory!r}")
            if isinstance(do, DiskFull) and not (0 <= do.fill <= 1 and do.size_kib > 0):
                raise ScenarioError(f"{at}: fill must be within [0, 1] and size_kib > 0")
            if isinstance(do, Load) and (do.kind not in LOAD_KINDS or do.users < 1 or do.workers < 0
                                         or do.rows_per_write < 1 or do.wait_s < 0 or do.spawn_rate <= 0):
                raise ScenarioError(f"{at}: load needs kind in {LOAD_KINDS}, users >= 1, workers >= 0, "
                                    "rows_per_write >= 1, wait_s >= 0 and spawn_rate > 0")
            if isinstance(do, HeldTransaction) and not (1 <= do.records <= 100_000 and 0 <= do.then_write <= 1_000_000):
                raise ScenarioError(f"{at}: a held transaction needs 1 <= records <= 100000 and "
                                    "0 <= then_write <= 1000000")
            if isinstance(do, Load) and step.duration is None:
                raise ScenarioError(f"{at}: a load step needs a duration")
            if isinstance(do, Toxic):
                try:
                    validate_toxic(do.type, do.stream, do.toxicity, dict(do.attributes))
                except HarnessError as exc:
                    raise ScenarioError(f"{at}: {exc}") from exc
        return self

    @property
    def fault_seconds(self) -> float:
        """Total time faults are on: the runner's waits scale with it."""
        return sum((s.duration or self.during_s) for s in self.steps if is_fault(s))


def is_fault(step: Step) -> bool:
    return not isinstance(step.do, ACTIONS) and not isinstance(step.do, Load)


def has_window(step: Step) -> bool:
    """Faults and loads are applied, then removed; actions happen at an instant."""
    return not isinstance(step.do, ACTIONS)


def with_load_workers(scenario: Scenario, workers: int) -> Scenario:
    """Every Locust step of the scenario in distributed mode with ``workers`` worker processes."""
    steps = tuple(replace(s, do=replace(s.do, workers=workers)) if isinstance(s.do, Load) else s
                  for s in scenario.steps)
    return replace(scenario, steps=steps)
