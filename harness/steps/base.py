"""What every step kind is: a frozen, strictly validated dataclass that owns its parameters, how
to apply and remove itself on a run, the evidence it reads back, the backend capabilities it
needs, and its name in incident files.

A step kind is one class in one file::

    @step_kind
    @dataclass(frozen=True, config=STRICT)
    class LinkDown(StepKind):
        kind_name: ClassVar[str] = "link_down"
        link: Name

        def describe(self) -> str: ...
        def needs(self) -> frozenset[Need]: ...       # capabilities a backend must have
        def check(self) -> Problem | None: ...       # what one field cannot say alone
        def apply(self, run, record) -> object: ...  # returns a handle for remove()
        def remove(self, run, handle, record) -> None: ...

Everything else (the scenario model, incident files, ``faultline list --steps``, what a backend
cannot do, soak and shrink) derives from the registry in ``harness.steps``.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import Field

from harness.model.capabilities import Need
from harness.model.strict import STRICT as STRICT  # re-exported: step kinds import it from here

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

# Every field is checked when a step is made (in a scenario module, an incident file, soak or
# shrink): exact types (no "false" for False), finite numbers only, bounds against absurd sizes,
# no unknown fields (STRICT, from the model floor: Expect uses it too).

Role = Literal["fault", "action", "load"]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Window = Annotated[float, Field(gt=0, le=86_400.0)]


class Problem(NamedTuple):
    """A step that is well-typed but cannot be: the field to point at, and why."""

    field: str
    message: str


@dataclasses.dataclass(frozen=True)
class World:
    """What ``faultline explore`` tells a step kind when it asks it to draw an instance of itself."""

    links: tuple[str, ...] = ("postgres", "redis", "kafka")
    during_s: float = 6.0  # the run's fault phase: windows are drawn to fit in it
    redis_commands: tuple[str, ...] = ()  # what the target sends Redis (its definition's); empty: unknown


class StepKind:
    """Base of every step kind (built-in or a team's own, registered with ``@step_kind``)."""

    kind_name: ClassVar[str] = ""  # its name in incident files and `faultline list --steps`
    role: ClassVar[Role] = "fault"  # faults and loads have a window; actions happen at an instant
    # An action that waits on the exporter (a job to finish, a pause's grace): the timeline runs it
    # on a thread of its own, so a fault's window still closes on time while it waits.
    waits: ClassVar[bool] = False
    # A fault that leaves the exporter unable to answer for its window (killed, frozen): explore
    # never puts an action that talks to it there, nor two such faults together.
    takes_exporter_away: ClassVar[bool] = False
    # Explore: how often a schedule gets one of this action (0: never drawn on its own: a resume
    # comes as a pause's follow-up), and the actions that meet this fault best (an export job in
    # a full disk).
    draw_share: ClassVar[float] = 0.35
    invites: ClassVar[tuple[str, ...]] = ()
    # Explore: a fault that shows when it begins while an action waits on a deadline (a clock
    # step inside a pause's grace) is, most of the time, started a moment after such an action.
    meets_waits: ClassVar[bool] = False
    # How long its apply or its remove may take before the run is stopped and healed (a restart
    # waits for the server to come back; nothing should wait on a later step). A kind whose wait
    # grows with its parameters says so in ``deadline``.
    deadline_s: ClassVar[float] = 180.0
    # A failover: the server whose topology it changes. Records lost around its window are
    # attributed to it in the report (harness.judge.anomalies.losses_by_failover).
    fails_over: ClassVar[str] = ""
    # The shortest window in which the fault does what it says (an ISR shrinks only once the
    # brokers' replica lag has passed): explore draws and moves its windows no shorter, and
    # lengthens its fault phase to hold them.
    min_window_s: ClassVar[float] = 0.0
    # A fault that acts only on data flowing through it meets writes through its window, one chunk
    # every this many seconds (when its scenario meets faults with writes): 0, at its start only.
    meets_writes_every_s: ClassVar[float] = 0.0

    def describe(self) -> str:
        return self.kind_name

    def parameters(self) -> dict[str, Any]:
        """Its fields and their values (what an incident file writes for it)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # registered kinds are dataclasses

    def needs(self) -> frozenset[Need]:
        """Capabilities a backend must have to perform this step (see ``Backend.lacks``)."""
        return frozenset()

    def check(self) -> Problem | None:
        return None

    def deadline(self, run: StepContext) -> float:
        """Seconds its apply or remove may take in ``run``: never less than its own waits allow."""
        return self.deadline_s

    def waits_for(self, other: StepKind) -> str | None:
        """Why this step's apply would wait until ``other`` (in force when this one starts) is
        removed, or None: a timeline cannot play that (the removal comes later on the same
        timeline), so a scenario with it is refused and explore keeps the two apart."""
        return None

    def holds(self) -> frozenset[str]:
        """What this fault takes sole charge of for its window: two faults that hold one thing at
        once contradict each other (the exporter killed and frozen, a server restarted and moved,
        a link down and flapping) and a scenario with both is refused, as explore never draws it."""
        held = {f"whether {need.name} runs" for need in self.needs() if need.takes_server_away}
        return frozenset(held | ({"the exporter's process"} if self.takes_exporter_away else set()))

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> StepKind | None:
        """A random instance with sensible ranges, for ``faultline explore``; None: this kind is
        not drawn (explore's coverage report lists it as never run, with this reason in its
        docstring). Deterministic in ``rng``."""
        return None

    def follow_up(self) -> tuple[StepKind, float] | None:
        """An action that must come after this one, and how many seconds later (a pause's resume,
        after its grace): explore and soak place it; None: nothing follows."""
        return None

    def fitted(self, window_left_s: float) -> StepKind:
        """This action as it should be drawn inside a fault window with this much time left (a
        pause's grace ends while the trouble is on); itself by default."""
        return self

    def watch(self, run: StepContext) -> Callable[[], dict[str, float]] | None:
        """A probe the run's timeline samples every half second while it lasts (a failover's
        leader and replication lag, drawn under the fault windows in report.html); None: none."""
        return None

    def loses_source_writes(self) -> bool:
        """Whether it can take acknowledged writes away from the source itself (a failover to a
        standby behind): the record ledger is corrected for it, a change workload's log cannot be
        yet, so a scenario with both is refused and explore draws no change workload beside it."""
        return False

    def knobs_needed(self) -> dict[str, str]:
        """Knobs a schedule with this step must have to test what it means (a full disk is the
        fault, not the exporter's disk guard refusing first)."""
        return {}

    def extra_drain_s(self) -> float:
        """Time the judge adds to its drain deadline for this step (a slow link slows the drain)."""
        return 0.0

    def simpler(self) -> list[StepKind]:
        """Gentler versions of this step, gentlest last, for shrink to try in place of it (a
        lower latency, fewer users, fewer records): a minimal incident keeps only the parameter
        values the failure needs. None by default."""
        return []

    def harsher(self) -> list[StepKind]:
        """Stronger versions of this step for ``amplify`` to try when a failure it took part in
        replays only some of the time (a rule that fires every time, at the first request, with
        certainty; a toxic on every connection): the other side of ``simpler``. None by default."""
        return []

    def prepare(self, run: StepContext) -> None:
        """Before the exporter starts: what the step sets up for the whole run (a small disk)."""

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        """Do it; put what shows it took effect in ``record.evidence`` (or ``record.result``)."""
        raise NotImplementedError(f"step kind {self.kind_name!r} does not say how to apply itself")

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        """Undo it at the end of its window (faults and loads); ``handle`` is what apply returned."""


class Background:
    """A step's loop on a thread of its own for the step's window (a link that flaps, sessions
    ended again and again, a watch on the server's log). ``body`` gets the stop event and must
    return soon after it is set; ``stop`` is called by the step's remove, and by the run's cleanup
    whatever happened before."""

    def __init__(self, run: StepContext, name: str, body: Callable[[threading.Event], None]) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=body, args=(self.stopping,), name=name, daemon=True)
        run.closers.append(self.stop)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=10)
