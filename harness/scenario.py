"""The scenario model: a workload, a timeline of fault steps and actions, and expectations.

A scenario is data. ``scenarios/<name>.py`` defines ``SCENARIO = Scenario(...)``; the runner
plays its timeline (phases before, during, after, as in chaostoolkit's journal), records when
every step was applied and removed with evidence that it took effect, and checks the
expectations. ``catches`` names the seeded exporter defects the scenario exists to catch;
the harness never reads which defect is on, it only judges behaviour.
"""

from __future__ import annotations

from dataclasses import field, replace
from dataclasses import fields as dataclass_fields
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.knobs import KNOBS
from harness.stack import LINKS, SERVICES
from harness.toxiproxy import validate_toxic

PHASES = ("before", "during", "after")

# Every field is checked when an object is made (in a scenario module, an incident file, soak or
# shrink): exact types (no "false" for False, no 1 for True), finite numbers only, bounds that
# refuse absurd sizes, no unknown fields. A scenario cannot hold a step the runner does not know.
STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")


DAY_S = 86_400.0
Seconds = Annotated[float, Field(ge=0, le=DAY_S)]  # an instant on the timeline
Window = Annotated[float, Field(gt=0, le=DAY_S)]  # a length of time that must pass
Fraction = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class ScenarioError(HarnessError):
    """A scenario definition is invalid; the message names the scenario and the field."""

    def __init__(self, message: str, field_name: str | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.field_name, self.step = field_name, step  # where in a file to point (incident files)


# -- faults ------------------------------------------------------------------------------------
@dataclass(frozen=True, config=STRICT)
class Toxic:
    link: Name
    type: Name
    stream: Literal["downstream", "upstream"] = "downstream"
    toxicity: Fraction = 1.0
    attributes: dict[str, Annotated[int, Field(ge=0, le=1_000_000_000)]] = field(default_factory=dict)

    def describe(self) -> str:
        attrs = ",".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return f"{self.type}({attrs}) on {self.link} {self.stream}" + (
            f" toxicity={self.toxicity}" if self.toxicity != 1.0 else "")


@dataclass(frozen=True, config=STRICT)
class LinkDown:
    link: Name

    def describe(self) -> str:
        return f"{self.link} link down"


@dataclass(frozen=True, config=STRICT)
class KillExporter:
    """SIGKILL the exporter; it is started again when the step ends."""

    def describe(self) -> str:
        return "exporter killed (SIGKILL)"


@dataclass(frozen=True, config=STRICT)
class FreezeExporter:
    """SIGSTOP the exporter for the step's duration, then SIGCONT."""

    def describe(self) -> str:
        return "exporter frozen (SIGSTOP)"


@dataclass(frozen=True, config=STRICT)
class RestartService:
    """Stop (or kill) a server and start it again when the step ends; ``wipe`` loses its data
    first (Redis without persistence)."""

    service: Name
    kill: bool = False
    wipe: bool = False

    def describe(self) -> str:
        return f"{self.service} {'killed' if self.kill else 'stopped'}" + (" and its data lost" if self.wipe else "")


DIRECTORIES = ("export_dir", "file_sink")


@dataclass(frozen=True, config=STRICT)
class DiskFull:
    """A directory of the exporter's (``export_dir`` or the ``file_sink``'s) lives on a tmpfs of
    ``size_kib`` for the whole scenario (mounted before the exporter starts). The step fills it
    with a filler file until ``fill`` of it is in use (0: the exporter's own writes fill it);
    when the step ends the filler goes and the tmpfs grows: the space is freed, the data stays."""

    size_kib: Annotated[int, Field(ge=1, le=16 * 1024 * 1024)] = 128
    directory: Name = "export_dir"
    fill: Fraction = 0.0

    def describe(self) -> str:
        return f"{self.directory} disk of {self.size_kib} KiB" + (f" filled to {self.fill:.0%}" if self.fill else
                                                                 " (filling up)")


@dataclass(frozen=True, config=STRICT)
class ReadOnlyDir:
    """Writes into a directory of the exporter's are refused (immutable attribute: even root gets EPERM)."""

    directory: Name = "export_dir"

    def describe(self) -> str:
        return f"{self.directory} refuses writes (permission denied)"


@dataclass(frozen=True, config=STRICT)
class HeldTransaction:
    """A writer takes ids for ``records`` rows in a transaction it keeps open for the window, while
    other writers commit ``then_write`` rows with higher ids at once (and the workload goes on);
    the transaction commits when the window ends. Commits out of id order: a reader that pages by
    id alone moves past the held ids before they are visible and never sees them."""

    records: Annotated[int, Field(ge=1, le=100_000)] = 5
    then_write: Annotated[int, Field(ge=0, le=1_000_000)] = 50

    def describe(self) -> str:
        return f"transaction of {self.records} rows held open while {self.then_write} later rows commit"


Fault = Toxic | LinkDown | KillExporter | FreezeExporter | RestartService | DiskFull | ReadOnlyDir | HeldTransaction


# -- load --------------------------------------------------------------------------------------
LOAD_KINDS = ("source", "api")


@dataclass(frozen=True, config=STRICT)
class Load:
    """Locust load for the step's window, run as a subprocess. ``kind`` "source": users write
    rows of ``rows_per_write`` into the source table (every write goes into the ledger with its
    outcome); "api": users submit small export jobs and poll them. ``workers`` > 0 runs Locust's
    distributed mode (a master and that many worker processes)."""

    kind: Literal["source", "api"] = "source"
    users: Annotated[int, Field(ge=1, le=10_000)] = 4
    spawn_rate: Annotated[float, Field(gt=0, le=10_000)] = 10.0
    wait_s: Annotated[float, Field(ge=0, le=3600)] = 0.05
    rows_per_write: Annotated[int, Field(ge=1, le=100_000)] = 10
    workers: Annotated[int, Field(ge=0, le=64)] = 0

    def describe(self) -> str:
        return f"locust {self.kind} load: {self.users} users" + (f" on {self.workers} workers" if self.workers else "")


# -- actions -----------------------------------------------------------------------------------
@dataclass(frozen=True, config=STRICT)
class Pause:
    grace_s: Annotated[float, Field(ge=0, le=3600)]

    def describe(self) -> str:
        return f"pause (grace {self.grace_s}s)"


@dataclass(frozen=True, config=STRICT)
class Resume:
    def describe(self) -> str:
        return "resume"


@dataclass(frozen=True, config=STRICT)
class Export:
    """Submit a batch export job and wait for it; ``expect_state`` is what a correct exporter reaches."""

    name: Name
    encoding: Name = "utf-8"
    format: Name = "jsonl"
    expect_state: Literal["completed", "failed"] = "completed"

    def describe(self) -> str:
        return f"export job {self.name} ({self.format}, {self.encoding})"


@dataclass(frozen=True, config=STRICT)
class Write:
    """Write more records of the scenario's profile during a phase."""

    records: Annotated[int, Field(ge=1, le=10_000_000)]

    def describe(self) -> str:
        return f"write {self.records} records"


@dataclass(frozen=True, config=STRICT)
class ExportBurst:
    """Submit ``jobs`` export jobs at once for each of ``users``; a correct exporter accepts
    ``accepted_per_user`` of each user's (the rest 429, or all 503 when the disk guard refuses)
    and completes every accepted one."""

    jobs: Annotated[int, Field(ge=1, le=1000)]
    users: Annotated[int, Field(ge=1, le=100)] = 2
    accepted_per_user: Annotated[int, Field(ge=0, le=1000)] = 0
    refused_status: Annotated[int, Field(ge=400, le=599)] = 429

    def describe(self) -> str:
        return f"burst of {self.jobs} export jobs for each of {self.users} users"


@dataclass(frozen=True, config=STRICT)
class Checkpoint:
    """Reconcile mid-run: wait up to ``within_s`` for every record written so far to reach a
    sink or the dead-letter stream, then record what is delivered, in flight or missing (soaks
    place one after each quiet period; the final reconciliation still gives the verdict)."""

    within_s: Window = 10.0

    def describe(self) -> str:
        return "checkpoint reconciliation"


Action = Pause | Resume | Export | Write | ExportBurst | Checkpoint
ACTIONS = (Pause, Resume, Export, Write, ExportBurst, Checkpoint)


@dataclass(frozen=True, config=STRICT)
class Step:
    phase: Literal["before", "during", "after"]
    do: Fault | Action | Load
    at: Seconds = 0.0
    duration: Window | None = None  # faults only; None = until the phase ends

    def describe(self) -> str:
        return self.do.describe()


@dataclass(frozen=True, config=STRICT)
class Workload:
    records: Count = 400
    profile: Name = "ascii"
    size: Annotated[int, Field(ge=1, le=16 * 1024 * 1024)] = 200  # bytes a record
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 1
    chunk: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    before_fraction: Fraction = 0.5  # of the records, written in the before phase (steady state)
    # Records written right after each fault is applied, on top of ``records``: data that meets
    # every fault by construction, not by where the evenly spread writes happen to fall (a shrunk
    # incident keeps these, so its replay does not depend on a race with the fault).
    meet_faults: Annotated[int, Field(ge=0, le=1_000_000)] = 0


@dataclass(frozen=True, config=STRICT)
class Expect:
    no_loss: bool = True
    no_corruption: bool = True
    dead_letters_have_reasons: bool = True
    errors_surfaced: bool = False
    process_alive: bool = True
    pause_within_grace: bool = False
    metrics_agree: bool = True
    recovered_within_s: Window = 60.0
    dead_lettered_at_least: Count = 0
    no_resource_leak: bool = False  # sample the exporter's RSS, files, threads, connections; judge trends


@dataclass(frozen=True, config=STRICT)
class Reproduction:
    """How often an incident failed the same way when it was confirmed, and with what: a rate
    below 100% means a replay that passes does not prove the bug gone."""

    failed: Annotated[int, Field(ge=0, le=10_000)]
    runs: Annotated[int, Field(ge=1, le=10_000)]
    violates: tuple[Name, ...] = ()
    faultline_version: str = ""
    target: str = ""
    servers: dict[str, str] = field(default_factory=dict)
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    measured_at: str = ""
    defect: Name | None = None  # the seeded defect it was confirmed against, when not in exporter_env

    @property
    def rate(self) -> str:
        return f"{self.failed}/{self.runs}"

    def validate(self) -> Reproduction:
        if self.failed > self.runs:
            raise ScenarioError(f"reproduced must be 'failed/runs' with 0 <= failed <= runs <= 10000, "
                                f"not {self.rate!r}")
        return self


@dataclass(frozen=True, config=STRICT)
class Scenario:
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,100}$")]
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    workload: Workload = Workload()
    steps: Annotated[tuple[Step, ...], Field(max_length=10_000)] = ()
    expect: Expect = Expect()
    catches: tuple[Name, ...] = ()
    incident: Name | None = None
    knobs: dict[str, Annotated[str, Field(max_length=200)]] = field(default_factory=dict)  # see harness.knobs
    # The target's own settings, as a run that failed had them (a seeded defect, --exporter-env):
    # incident files keep them for an exact replay; the catalogue uses knobs only.
    exporter_env: dict[str, str] = field(default_factory=dict)
    during_s: Window = 3.0  # how long the during phase lasts at least
    sink: Literal["kafka", "file"] = "kafka"  # the target sink delivered to: kafka_topic or file_sink
    # What an incident file says it was confirmed with; not part of what is run (nor compared).
    reproduction: Reproduction | None = field(default=None, compare=False)

    def validate(self) -> Scenario:
        """What one field cannot say alone (types, bounds and kinds were checked when it was made)."""
        unknown = sorted(set(self.knobs) - set(KNOBS))
        if unknown:
            raise ScenarioError(f"scenario {self.name!r}: knobs.{unknown[0]} is not a knob Faultline knows; knobs: "
                                f"{', '.join(KNOBS)}", unknown[0])
        for n, step in enumerate(self.steps):
            check_step(step, f"scenario {self.name!r}: step {n} ({type(step.do).__name__})", n)
        return self

    @property
    def fault_seconds(self) -> float:
        """Total time faults are on: the runner's waits scale with it."""
        return sum((s.duration or self.during_s) for s in self.steps if is_fault(s))


STEP_KINDS = (Toxic, LinkDown, KillExporter, FreezeExporter, RestartService, DiskFull, ReadOnlyDir, HeldTransaction,
              Load, Pause, Resume, Export, Write, ExportBurst, Checkpoint)
MODELS: dict[str, type] = {cls.__name__: cls for cls in (*STEP_KINDS, Step, Workload, Expect, Reproduction, Scenario)}


def error_field(exc: ValidationError) -> str:
    """The field (dotted, by name even when it was given by position) of the first error."""
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    names = [f.name for f in dataclass_fields(MODELS[exc.title])] if exc.title in MODELS else []
    head = loc[0] if loc else ""
    first = names[head] if isinstance(head, int) and head < len(names) else str(head)
    return ".".join([first, *(str(part) for part in loc[1:] if not str(part)[:1].isupper())])


def explain(exc: ValidationError) -> str:
    """One line for a refused model: ``Class.field: what is wrong (got value)``; a step of a kind
    the harness does not know names the kinds it does."""
    errors = exc.errors()
    where = f"{exc.title}.{error_field(exc)}"
    if errors and all(e["type"] in ("dataclass_exact_type", "is_instance_of") for e in errors):
        got = type(errors[0]["input"]).__name__
        return (f"{where}: a {got} is not a step kind Faultline knows; step kinds: "
                f"{', '.join(cls.__name__ for cls in STEP_KINDS)}")
    first = errors[0] if errors else {"msg": str(exc), "input": None}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']} (got {repr(first.get('input'))[:80]}){more}"


def check_step(step: Step, where: str, index: int | None = None) -> None:
    """Faults only in the during phase, links, services and directories that exist, toxics that
    Toxiproxy accepts, a window for every load."""
    do: Any = step.do

    def refuse(message: str, field_name: str) -> ScenarioError:
        return ScenarioError(f"{where}: {message}", field_name, index)

    if step.phase != "during" and not isinstance(do, ACTIONS):
        raise refuse(f"faults belong in the 'during' phase, not {step.phase!r}", "phase")
    if isinstance(do, (Toxic, LinkDown)) and do.link not in LINKS:
        raise refuse(f"unknown link {do.link!r}; links are {', '.join(LINKS)}", "link")
    if isinstance(do, RestartService) and do.service not in SERVICES:
        raise refuse(f"unknown service {do.service!r}; services are {', '.join(SERVICES)}", "service")
    if isinstance(do, (DiskFull, ReadOnlyDir)) and do.directory not in DIRECTORIES:
        raise refuse(f"directory must be one of {DIRECTORIES}, not {do.directory!r}", "directory")
    if isinstance(do, Load) and step.duration is None:
        raise refuse("a load step needs a duration", "duration")
    if isinstance(do, Toxic):
        try:
            validate_toxic(do.type, do.stream, do.toxicity, dict(do.attributes))
        except HarnessError as exc:
            raise refuse(str(exc), "attributes") from exc


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
