"""The scenario model: a workload, a timeline of fault steps and actions, and expectations.

A scenario is data. ``scenarios/<name>.py`` defines ``SCENARIO = Scenario(...)``; the runner
plays its timeline (phases before, during, after, as in chaostoolkit's journal), records when
every step was applied and removed with evidence that it took effect, and checks the
expectations. ``catches`` names the seeded exporter defects the scenario exists to catch;
the harness never reads which defect is on, it only judges behaviour.
"""

from __future__ import annotations

from dataclasses import asdict as dataclass_asdict
from dataclasses import field, replace
from dataclasses import fields as dataclass_fields
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, InstanceOf, ValidationError
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.model.capabilities import Need
from harness.model.changes import ChangeMix
from harness.model.expect import CHANGE_FIELDS, LONGEST_S, Count, Expect, Window
from harness.model.knobs import KNOBS, knob_problem
from harness.model.profiles import PROFILES

# Every field is checked when an object is made (in a scenario module, an incident file, soak or
# shrink) with the step kinds' rules: exact types (no "false" for False, no 1 for True), finite
# numbers only, bounds that refuse absurd sizes, no unknown fields. A scenario cannot hold a step
# of a kind the registry does not know.
from harness.model.strict import STRICT

PHASES = ("before", "during", "after")

Seconds = Annotated[float, Field(ge=0, le=LONGEST_S)]  # an instant on the timeline
Fraction = Annotated[float, Field(ge=0, le=1)]
# A fault's window: shorter than this is applied and removed in one breath (and 1e-300 would make
# two windows on one target that "do not overlap").
StepWindow = Annotated[float, Field(ge=0.05, le=LONGEST_S)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
EnvName = Annotated[str, Field(pattern=r"^[^=\x00]{1,200}$")]  # what an environment can hold as a name
STEPS_MAX = 200_000  # a week's soak: a window and a checkpoint every 12 s or so


class ScenarioError(HarnessError):
    """A scenario definition is invalid; the message names the scenario and the field."""

    def __init__(self, message: str, field_name: str | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.field_name, self.step = field_name, step  # where in a file to point (incident files)


# -- faults ------------------------------------------------------------------------------------
# The step kinds live in harness.steps, one class a kind; the built-ins are named here too so that
# scenario modules write ``from harness.catalogue.scenario import LinkDown, Step``.
from harness.steps import StepKind, StepKindError, by_name, kind_of, registered  # noqa: E402
from harness.steps.actions import Checkpoint, Write  # noqa: E402
from harness.steps.clock import ClockDrift, ClockJump  # noqa: E402
from harness.steps.disk import DIRECTORIES, DiskFull, ReadOnlyDir  # noqa: E402
from harness.steps.exports import Export, ExportBurst  # noqa: E402
from harness.steps.failover import PostgresFailover, RedisFailover  # noqa: E402
from harness.steps.files import CrashLosingUnsynced, FileError  # noqa: E402
from harness.steps.kafka_failover import KafkaIsrShrunk, KafkaLeaderLost  # noqa: E402
from harness.steps.kafka_faults import KafkaAddPartitions, KafkaQuota, KafkaTopicSetting  # noqa: E402
from harness.steps.kafka_protocol import KafkaProduceError, KafkaRequestFault  # noqa: E402
from harness.steps.load import LOAD_KINDS, Load  # noqa: E402
from harness.steps.network import LinkDown, LinkFlap, Toxic  # noqa: E402
from harness.steps.pauses import Pause, Resume  # noqa: E402
from harness.steps.postgres_faults import (  # noqa: E402
    PostgresConnectionLimit,
    PostgresLockTable,
    PostgresReadOnly,
    PostgresStatementTimeout,
    PostgresTerminateSessions,
)
from harness.steps.postgres_protocol import PostgresLoginRefused, PostgresStatementError  # noqa: E402
from harness.steps.process import FreezeExporter, KillExporter, RestartService, ServiceMoves  # noqa: E402
from harness.steps.redis_faults import (  # noqa: E402
    RedisClientPause,
    RedisDenyCommands,
    RedisRefuseConnections,
    RedisRefuseWrites,
)
from harness.steps.redis_protocol import RedisCommandError  # noqa: E402
from harness.steps.source import HeldTransaction  # noqa: E402

__all__ = ["DIRECTORIES", "LOAD_KINDS", "PHASES", "ChangeMix", "Checkpoint", "ClockDrift", "ClockJump",
           "CrashLosingUnsynced", "DiskFull", "Expect", "Export", "ExportBurst", "FileError", "FreezeExporter",
           "HeldTransaction",
           "KafkaAddPartitions", "KafkaIsrShrunk", "KafkaLeaderLost", "KafkaProduceError", "KafkaRequestFault",
           "KafkaQuota", "KafkaTopicSetting",
           "KillExporter", "LinkDown", "LinkFlap", "Load", "Pause", "PostgresConnectionLimit", "PostgresFailover",
           "PostgresLockTable",
           "PostgresLoginRefused", "PostgresReadOnly", "PostgresStatementError", "PostgresStatementTimeout",
           "PostgresTerminateSessions", "ReadOnlyDir", "RedisClientPause", "RedisCommandError", "RedisDenyCommands",
           "RedisFailover", "RedisRefuseConnections", "RedisRefuseWrites", "Reproduction", "RestartService", "Resume",
           "Scenario", "ScenarioError", "ServiceMoves", "Step", "StepKind", "Toxic", "Workload", "Write", "by_name",
           "check_step", "error_field", "explain", "has_window", "is_fault", "kind_of", "registered",
           "with_load_workers"]


def _registered_step(value: StepKind) -> StepKind:
    """A step object of a kind the registry knows (built-in, or registered with ``@step_kind``)."""
    try:
        kind_of(value)
    except StepKindError as exc:
        raise ValueError(str(exc)) from exc  # pydantic reports it as this field's error
    needs = value.needs()
    untyped = [repr(needs)] if not isinstance(needs, frozenset) else sorted(
        repr(n) for n in needs if not isinstance(n, Need))
    if untyped:  # a team's kind still naming "kind:name" strings: the backend could not read them
        raise ValueError(f"{type(value).__name__}.needs() must return a frozenset of harness.model.capabilities.Need, "
                         f"not {', '.join(untyped)}")
    return value


@dataclass(frozen=True, config=STRICT)
class Step:
    phase: Literal["before", "during", "after"]
    do: Annotated[InstanceOf[StepKind], AfterValidator(_registered_step)]
    at: Seconds = 0.0
    duration: StepWindow | None = None  # faults only; None = until the phase ends

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
    # Distinct keys the records cycle through (0: a key per record): records of one key are
    # written under different faults, and the judge checks they reach the sink in source order.
    keys: Annotated[int, Field(ge=0, le=1_000_000)] = 16
    # How each chunk is written: one multi-row INSERT, an INSERT per row (each its own
    # transaction), or a COPY in one transaction (rows that share one commit and WAL position).
    write: Literal["single", "multi", "copy"] = "multi"
    # Changes beside the records: updates, deletes, key changes and transactions on rows of their
    # own, judged version by version (harness.judge.histories). None: inserts only.
    changes: ChangeMix | None = None


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
    steps: Annotated[tuple[Step, ...], Field(max_length=STEPS_MAX)] = ()
    expect: Expect = Expect()
    catches: tuple[Name, ...] = ()
    incident: Name | None = None
    knobs: dict[str, Annotated[str, Field(max_length=200)]] = field(default_factory=dict)  # see harness.model.knobs
    # The target's own settings, as a run that failed had them (a seeded defect, --exporter-env):
    # incident files keep them for an exact replay; the catalogue uses knobs only.
    exporter_env: dict[EnvName, Annotated[str, Field(max_length=100_000, pattern=r"^[^\x00]*$")]] = field(
        default_factory=dict)
    during_s: Window = 3.0  # how long the during phase lasts at least
    sink: Literal["kafka", "file"] = "kafka"  # the target sink delivered to: kafka_topic or file_sink
    # What an incident file says it was confirmed with; not part of what is run (nor compared).
    reproduction: Reproduction | None = field(default=None, compare=False)
    # A scenario that cannot fail (no records, every check off) is refused unless this says it is meant.
    allow_trivial: bool = False

    def validate(self) -> Scenario:
        """What one field cannot say alone (types, bounds and kinds were checked when it was made)."""
        unknown = sorted(set(self.knobs) - set(KNOBS))
        if unknown:
            raise ScenarioError(f"scenario {self.name!r}: knobs.{unknown[0]} is not a knob Faultline knows; knobs: "
                                f"{', '.join(KNOBS)}", unknown[0])
        for name, value in self.knobs.items():
            if (problem := knob_problem(name, value)) is not None:
                raise ScenarioError(f"scenario {self.name!r}: knobs.{name} {problem}", name)
        if self.workload.profile not in PROFILES:
            raise ScenarioError(f"scenario {self.name!r}: workload.profile {self.workload.profile!r} is not a payload "
                                f"profile; profiles: {', '.join(sorted(PROFILES))}", "profile")
        changes = self.workload.changes
        if changes is not None and (mix_problem := changes.problem()) is not None:
            raise ScenarioError(f"scenario {self.name!r}: workload.changes.{mix_problem[0]}: {mix_problem[1]}",
                                f"changes.{mix_problem[0]}")
        self._refuse_trivial()
        losing = next((n for n, s in enumerate(self.steps) if s.do.loses_source_writes()), None)
        if changes is not None and losing is not None:
            raise ScenarioError(f"scenario {self.name!r}: step {losing + 1} ({self.steps[losing].describe()}) loses "
                                f"acknowledged writes from the source itself, which a change workload's log cannot "
                                f"account for yet: write records only beside it", "changes")
        for n, step in enumerate(self.steps):
            check_step(step, f"scenario {self.name!r}: step {n + 1} ({type(step.do).__name__})", n)  # counted from 1
        refuse_overlaps(self.steps, f"scenario {self.name!r}")
        refuse_waits(self.steps, f"scenario {self.name!r}")
        return self

    def _refuse_trivial(self) -> None:
        """A scenario that cannot fail proves nothing, and a green verdict from it would be read
        as proof: no record written (nor any writer), or every check turned off. Refused unless
        it says it means it (``allow_trivial``)."""
        if self.allow_trivial:
            return
        writes = self.workload.records or self.workload.meet_faults or self.workload.changes or any(
            type(s.do).role == "load" or isinstance(s.do, Write) for s in self.steps)
        if not writes:
            raise ScenarioError(f"scenario {self.name!r}: workload.records is 0 and nothing else writes: no record "
                                "can be lost, so it cannot fail (set allow_trivial = true if that is the point)",
                                "records")
        expect = self.expect
        judging = {name: value for name, value in dataclass_asdict(expect).items()
                   if self.workload.changes is not None or name not in CHANGE_FIELDS}
        if not any(value is True for value in judging.values()) and not any(expect.custom.values()):
            raise ScenarioError(f"scenario {self.name!r}: every check in [expect] is off, so it cannot fail "
                                "(set allow_trivial = true if that is the point)", "no_loss")

    @property
    def fault_seconds(self) -> float:
        """Total time faults are on: the runner's waits scale with it."""
        return sum((s.duration or self.during_s) for s in self.steps if is_fault(s))


def _models() -> dict[str, type]:
    return {cls.__name__: cls for cls in (*registered().values(), Step, Workload, ChangeMix, Expect, Reproduction,
                                          Scenario)}


def error_field(exc: ValidationError) -> str:
    """The field (dotted, by name even when it was given by position) of the first error."""
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    models = _models()
    names = [f.name for f in dataclass_fields(models[exc.title])] if exc.title in models else []
    head = loc[0] if loc else ""
    first = names[head] if isinstance(head, int) and head < len(names) else str(head)
    return ".".join([first, *(str(part) for part in loc[1:] if not str(part)[:1].isupper())])


def explain(exc: ValidationError) -> str:
    """One line for a refused model: ``Class.field: what is wrong (got value)``; a step of a kind
    the harness does not know names the kinds it does."""
    errors = exc.errors()
    where = f"{exc.title}.{error_field(exc)}"
    unknown_kind = errors and (all(e["type"] in ("dataclass_exact_type", "is_instance_of") for e in errors)
                               or "is not a registered step kind" in str(errors[0].get("msg", "")))
    if unknown_kind:
        got = type(errors[0]["input"]).__name__
        return (f"{where}: a {got} is not a step kind Faultline knows (register it with @step_kind); step kinds: "
                f"{', '.join(sorted(registered()))}")
    first = errors[0] if errors else {"msg": str(exc), "input": None}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']} (got {repr(first.get('input'))[:80]}){more}"


def check_step(step: Step, where: str, index: int | None = None) -> None:
    """What one field cannot say alone: faults only in the during phase, a window for every load,
    and whatever the step kind itself checks (links, services, directories, toxics)."""
    role = type(step.do).role
    if step.phase != "during" and role != "action":
        raise ScenarioError(f"{where}: faults belong in the 'during' phase, not {step.phase!r}", "phase", index)
    if role == "load" and step.duration is None:
        raise ScenarioError(f"{where}: a load step needs a duration", "duration", index)
    problem = step.do.check()
    if problem is not None:
        raise ScenarioError(f"{where}: {problem.message}", problem.field, index)


def refuse_overlaps(steps: tuple[Step, ...], where: str) -> None:
    """Two faults of the same kind on the same target at once are ambiguous (which one ends when,
    and which one's evidence is whose?), and two that hold one thing (``StepKind.holds``: the
    exporter killed and frozen, a link down and flapping) contradict each other; different
    toxics on one link are fine. One sweep over the windows sorted by start (a week's soak has
    tens of thousands). Steps are counted from 1, as an incident file's reader counts its [[steps]]."""
    claims: dict[str, list[tuple[float, float, int]]] = {}
    for n, step in enumerate(steps):
        if not is_fault(step):
            continue
        end = step.at + (step.duration or float("inf"))
        for claim in (_same_target(step), *step.do.holds()):
            claims.setdefault(claim, []).append((step.at, end, n))
    for claim, windows in claims.items():
        windows.sort()
        latest_end, latest_n = -1.0, -1
        for at, end, n in windows:
            if at < latest_end:
                first, second = sorted((latest_n, n))
                raise ScenarioError(f"{where}: step {second + 1} overlaps step {first + 1} on the same target "
                                    f"({claim}); one fault of a kind per target, and one fault holding a thing, "
                                    "at a time", "at", second)
            if end > latest_end:
                latest_end, latest_n = end, n


def refuse_waits(steps: tuple[Step, ...], where: str) -> None:
    """A step that starts while another is in force and whose apply would wait for that one's
    removal (``StepKind.waits_for``): the timeline would wait on a later event of its own. One
    sweep by start time, comparing each step with the windows open then."""
    faults = sorted(((s.at, n, s) for n, s in enumerate(steps) if is_fault(s)), key=lambda f: (f[0], f[1]))
    starting: dict[float, list[tuple[int, Step]]] = {}
    for at, n, step in faults:
        starting.setdefault(at, []).append((n, step))
    open_: list[tuple[float, int, Step]] = []  # (end, index, step) of windows begun before
    for at, n, step in faults:
        open_ = [w for w in open_ if w[0] > at]
        for m, other in [(m, o) for _end, m, o in open_] + starting[at]:
            if m != n and (why := step.do.waits_for(other.do)):
                raise ScenarioError(f"{where}: step {n + 1} starts inside step {m + 1} and would wait for it: {why}",
                                    "at", n)
        open_.append((at + (step.duration or float("inf")), n, step))


def _same_target(step: Step) -> str:
    params = step.do.parameters()
    return ":".join([kind_of(step.do), *(str(params[k]) for k in ("link", "service", "directory", "type", "stream")
                                         if k in params)])


def is_fault(step: Step) -> bool:
    return type(step.do).role == "fault"


def has_window(step: Step) -> bool:
    """Faults and loads are applied, then removed; actions happen at an instant."""
    return type(step.do).role != "action"


def with_load_workers(scenario: Scenario, workers: int) -> Scenario:
    """Every Locust step of the scenario in distributed mode with ``workers`` worker processes."""
    steps = tuple(replace(s, do=replace(s.do, workers=workers)) if isinstance(s.do, Load) else s
                  for s in scenario.steps)
    return replace(scenario, steps=steps)
