"""What an exploration is asked (``ExplorePlan``), what it may draw for a target, and the rules a
drawn schedule keeps: which faults clash, where actions may stand. ``harness.search.explore`` has the
whole story; the same rules keep a mutated or shrunk schedule sane."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.catalogue.scenario import Scenario, Step
from harness.errors import HarnessError
from harness.model.target import TargetDefinition
from harness.steps import StepKind, World, kind_of, registered


class ExploreError(HarnessError):
    """Explore was asked for something it cannot do (no drawable kind, bad budget)."""


@dataclass(frozen=True)
class ExplorePlan:
    seed: int = 1
    runs: int | None = None  # stop after this many runs ...
    budget_s: float | None = None  # ... or once this much time has gone (one of them is set)
    max_overlap: int = 2
    during_s: float = 4.0
    kinds: tuple[str, ...] = ()  # the step kinds to draw from (empty: every registered one)
    keep_going: bool = False
    knobs: frozenset[str] | None = None  # the knobs the target maps (None: every knob explore draws)
    links: tuple[str, ...] = World().links  # the links faults are drawn on: the servers the target uses
    lacks: Callable[[StepKind], str | None] = field(default=lambda _s: None, compare=False)
    # The change operations the target carries (its [changes]): change workloads are drawn of
    # these; empty: inserts only.
    changes: tuple[str, ...] = ()
    redis_commands: tuple[str, ...] = ()  # the Redis commands the target sends (its definition's)
    # (i, n): play only runs i, i+n, i+2n, ... of the seed's sequence (``--shard i/n``); None: all.
    shard: tuple[int, int] | None = None

    def plays(self, run: int) -> bool:
        """Whether this explore plays ``run`` (another shard plays the rest)."""
        return self.shard is None or (run - 1) % self.shard[1] == self.shard[0] - 1

    @property
    def open_loop(self) -> bool:
        """Sharded: every schedule drawn from the seed and the schedules before it alone, never from
        results (another runner's results are not here), so n shards draw what one explore of all
        the runs draws with ``--shard 1/1``."""
        return self.shard is not None

    def validate(self) -> ExplorePlan:
        if (self.runs is None) == (self.budget_s is None):
            raise ExploreError("say how long to explore: --runs N or --budget DURATION (one of them)")
        if self.runs is not None and not 1 <= self.runs <= 1_000_000:
            raise ExploreError(f"--runs must be within 1..1000000, not {self.runs}")
        if self.budget_s is not None and not 1 <= self.budget_s <= 7 * 24 * 3600:
            raise ExploreError(f"--budget must be between 1s and 7 days, not {self.budget_s}s")
        if not 1 <= self.max_overlap <= 8:
            raise ExploreError(f"--max-overlap must be within 1..8, not {self.max_overlap}")
        if self.shard is not None and not 1 <= self.shard[0] <= self.shard[1] <= 10_000:
            raise ExploreError(f"--shard must be I/N with 1 <= I <= N <= 10000, not {self.shard[0]}/{self.shard[1]}")
        unknown = sorted(set(self.kinds) - set(registered()))
        if unknown:
            raise ExploreError(f"unknown step kind(s) {unknown}; `faultline list --steps` lists them")
        return self

    @property
    def world(self) -> World:
        return World(links=self.links, during_s=self.during_s, redis_commands=self.redis_commands)


def for_target(plan: ExplorePlan, target: TargetDefinition) -> ExplorePlan:
    """The plan for a target: faults on the links of the servers it uses, the knobs it has a
    setting for, and nothing it cannot perform or has nothing to act on."""
    return dataclasses.replace(
        plan, knobs=frozenset(k for k, setting in target.knobs.items() if setting),
        links=tuple(link for link in plan.links if link in target.uses),
        lacks=lambda step: target.unsupported(step) or target.idle_for(step),
        changes=target.changes.operations if target.changes is not None else (),
        redis_commands=tuple(command.upper() for command in target.redis_commands))


def drawable(plan: ExplorePlan, world: World) -> tuple[dict[str, type[StepKind]], dict[str, str]]:
    """The kinds explore draws from, and why each of the others is never drawn."""
    chosen, never = {}, {}
    probe = random.Random(0)
    for name, cls in sorted(registered().items()):
        if plan.kinds and name not in plan.kinds:
            never[name] = "not among --kinds"
            continue
        sample = cls.draw(probe, world)
        if sample is None:
            never[name] = "its kind does not draw itself (see its draw())"
        elif (reason := plan.lacks(sample)) is not None:
            never[name] = reason
        else:
            chosen[name] = cls
    if not any(cls.role == "fault" for cls in chosen.values()):
        raise ExploreError("no fault kind can be drawn here: " + "; ".join(f"{k}: {v}" for k, v in never.items()))
    return chosen, never


def window(step: Step, during_s: float) -> tuple[float, float]:
    start = step.at or 0.0
    return start, start + (step.duration if step.duration is not None else during_s)


def services(step: StepKind) -> frozenset[str]:
    """The servers a step touches, from its needs() (admin access, a link, a restart, ...)."""
    return frozenset(need.server for need in step.needs() if need.server is not None)


def takes_away(step: StepKind) -> frozenset[str]:
    """The servers a step stops or moves for its window (its restart and move needs)."""
    return frozenset(need.name for need in step.needs() if need.takes_server_away)


def clash(a: StepKind, b: StepKind) -> bool:
    """Two faults that cannot be in force at once: the same kind, one resource (their needs()
    meet), one that needs a server the other takes away (a topic setting while the broker is
    stopped), two that each take the exporter away or hold one thing, or one that would wait
    for the other (a transaction's rows behind a table lock)."""
    return (kind_of(a) == kind_of(b) or bool(a.needs() & b.needs())
            or bool(takes_away(a) & services(b)) or bool(takes_away(b) & services(a))
            or (a.takes_exporter_away and b.takes_exporter_away) or bool(a.holds() & b.holds())
            or a.waits_for(b) is not None or b.waits_for(a) is not None)


def keeps_actions_out(step: StepKind) -> bool:
    """Actions talk to the exporter and read the servers: not while the exporter or a server is away."""
    return step.takes_exporter_away or bool(takes_away(step))


CLASH_MARGIN_S = 1.0  # clashing faults are kept this far apart: applying and removing take time
WAITING_CLEARANCE_S = 5.0  # a waiting action starts at least this long before a fault that takes the exporter away


def conflicts(step: Step, others: list[Step], during_s: float, max_overlap: int) -> bool:
    """At most max_overlap faults at once, and never two that clash (nor close to each other:
    removing one, a broker brought back for instance, takes time, and a window that starts at the
    other's end would meet it)."""
    lo, hi = window(step, during_s)
    faults = [(o, *window(o, during_s)) for o in others if o.do.role == "fault"]
    overlapping = [o for o, o_lo, o_hi in faults if o_lo < hi and lo < o_hi]
    near = [o for o, o_lo, o_hi in faults if o_lo < hi + CLASH_MARGIN_S and lo < o_hi + CLASH_MARGIN_S]
    return len(overlapping) >= max_overlap or any(clash(o.do, step.do) for o in near)


def variant(step: StepKind) -> str:
    """A step's variant: its kind and its parameters that are not numbers (the link, the toxic's
    type and direction, a lock mode): numbers vary within a variant, variants are what is covered."""
    named = sorted((k, v) for k, v in step.parameters().items() if isinstance(v, str | bool | None))
    return kind_of(step) + "".join(f" {k}={v}" for k, v in named)


def waiting_actions_clear(steps: list[Step] | tuple[Step, ...], during_s: float) -> bool:
    """No action that waits on the exporter starts within WAITING_CLEARANCE_S before (or inside)
    a window that takes the exporter or a server away."""
    away = [window(s, during_s) for s in steps if s.do.role == "fault" and keeps_actions_out(s.do)]
    return not any(lo - WAITING_CLEARANCE_S <= (s.at or 0.0) <= hi + 0.5 for s in steps
                   if s.do.role == "action" and s.do.waits for lo, hi in away)


def inside_windows(scenario: Scenario, during_s: float) -> list[str]:
    """Each action that happened inside a fault's window, as "action in fault kind"."""
    faults = [s for s in scenario.steps if s.do.role == "fault"]
    return [f"{kind_of(action.do)} in {kind_of(fault.do)}"
            for action in scenario.steps if action.do.role == "action"
            for fault in faults if window(fault, during_s)[0] <= (action.at or 0.0) < window(fault, during_s)[1]]


