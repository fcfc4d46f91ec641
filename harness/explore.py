"""``faultline explore``: many short runs, each a randomly drawn schedule judged by the full judge.

Jepsen's combined nemeses and FoundationDB's simulation find bugs nobody wrote a test for by
drawing many random, overlapping schedules and checking invariants after each. Here every step
kind draws an instance of itself (``StepKind.draw``); a schedule overlaps up to ``max_overlap``
faults (never two on one resource: their ``needs()`` must not meet), puts actions inside fault
windows (a pause and its resume, an export job, more writes) and varies the payload profile and
the knobs, so records are dead-lettered while faults are active.

Guided, like a coverage-guided fuzzer but black-box: after each run its *signature* (which of the
exporter's counters moved, the kinds of warning and error it logged, how pauses went) is noted;
a schedule that showed a new signature joins a corpus, and part of the following runs mutate a
corpus entry (add, drop, shift, widen or overlap a fault) instead of drawing from scratch.

Everything is drawn from ``random.Random`` seeded by (seed, run number): the same seed and
version give the same schedules, and each schedule is a ``Scenario`` that an incident file holds.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.profiles import PROFILES as payload_profiles
from harness.result import ExploreFailure, ExploreSummary, ScenarioResult, Verdict
from harness.scenario import Expect, Scenario, Step, Workload
from harness.steps import StepKind, World, kind_of, registered
from harness.target import TargetDefinition
from harness.workload import WriteMode

# Every payload profile there is: malformed, oversized and unencodable records are dead-lettered
# while faults are active.
PROFILES = tuple(sorted(payload_profiles))
KNOB_CHOICES = {"delivery_timeout_ms": ("1500", "10000"), "metadata_poll_interval_s": ("0.5", "2.0"),
                "poll_interval_s": ("0.05", "0.2"), "source_timeout_s": ("1", "5")}
# Record sizes (a profile's base size): small records batch up, so a batch can be refused by a
# limit each of them fits under; large ones meet limits alone.
SIZES = (100, 200, 1000, 4000)
# As applications write: COPY puts many rows on one commit.
WRITE_MODES: tuple[WriteMode, ...] = ("multi", "single", "copy")
# Knobs drawn jointly with the faults: a fault on a server matters to the exporter only once its
# client gives up within the window (a 4-second window and a 10-second delivery timeout: the send
# is simply retried until the link is back). For each server the faults touch, these settings are
# taken most of the time, so faults reach the exporter's error paths instead of its patience.
SHARP_KNOBS = {"kafka": {"delivery_timeout_ms": "1500"},
               "postgres": {"source_timeout_s": "1", "metadata_poll_interval_s": "0.5"}}
SHARP_SHARE = 0.75
MUTATIONS = ("add", "drop", "shift", "widen", "overlap", "knobs")
VARIANT_CANDIDATES = 4  # instances of a kind drawn to pick the least seen variant from
BREADTH_PROBES = 200  # instances drawn once per kind to estimate how many variants it has
FRESH_SHARE = 0.5  # of the runs once the corpus is not empty, drawn from scratch


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

    def validate(self) -> ExplorePlan:
        if (self.runs is None) == (self.budget_s is None):
            raise ExploreError("say how long to explore: --runs N or --budget DURATION (one of them)")
        if self.runs is not None and not 1 <= self.runs <= 1_000_000:
            raise ExploreError(f"--runs must be within 1..1000000, not {self.runs}")
        if self.budget_s is not None and not 1 <= self.budget_s <= 7 * 24 * 3600:
            raise ExploreError(f"--budget must be between 1s and 7 days, not {self.budget_s}s")
        if not 1 <= self.max_overlap <= 8:
            raise ExploreError(f"--max-overlap must be within 1..8, not {self.max_overlap}")
        unknown = sorted(set(self.kinds) - set(registered()))
        if unknown:
            raise ExploreError(f"unknown step kind(s) {unknown}; `faultline list --steps` lists them")
        return self

    @property
    def world(self) -> World:
        return World(links=self.links, during_s=self.during_s)


def for_target(plan: ExplorePlan, target: TargetDefinition) -> ExplorePlan:
    """The plan for a target: faults on the links of the servers it uses, the knobs it has a
    setting for, and nothing it cannot perform or has nothing to act on."""
    return dataclasses.replace(
        plan, knobs=frozenset(k for k, setting in target.knobs.items() if setting),
        links=tuple(link for link in plan.links if link in target.uses),
        lacks=lambda step: target.unsupported(step) or target.idle_for(step))


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


def _window(step: Step, during_s: float) -> tuple[float, float]:
    start = step.at or 0.0
    return start, start + (step.duration if step.duration is not None else during_s)


def _services(step: StepKind) -> frozenset[str]:
    """The servers a step touches, from its needs() (``admin:kafka``, ``link:redis``, ...)."""
    return frozenset(n.split(":", 1)[1] for n in step.needs() if ":" in n and not n.startswith(("tool:", "files:")))


def _takes_away(step: StepKind) -> frozenset[str]:
    """The servers a step stops or moves for its window (``restart:`` and ``move:`` needs)."""
    return frozenset(n.split(":", 1)[1] for n in step.needs() if n.startswith(("restart:", "move:")))


def _clash(a: StepKind, b: StepKind) -> bool:
    """Two faults that cannot be in force at once: the same kind, one resource (their needs()
    meet), one that needs a server the other takes away (a topic setting while the broker is
    stopped), or two that each take the exporter away."""
    return (kind_of(a) == kind_of(b) or bool(a.needs() & b.needs())
            or bool(_takes_away(a) & _services(b)) or bool(_takes_away(b) & _services(a))
            or (a.takes_exporter_away and b.takes_exporter_away))


def _keeps_actions_out(step: StepKind) -> bool:
    """Actions talk to the exporter and read the servers: not while the exporter or a server is away."""
    return step.takes_exporter_away or bool(_takes_away(step))


CLASH_MARGIN_S = 1.0  # clashing faults are kept this far apart: applying and removing take time
WAITING_CLEARANCE_S = 5.0  # a waiting action starts at least this long before a fault that takes the exporter away


def _conflicts(step: Step, others: list[Step], during_s: float, max_overlap: int) -> bool:
    """At most max_overlap faults at once, and never two that clash (nor close to each other:
    removing one, a broker brought back for instance, takes time, and a window that starts at the
    other's end would meet it)."""
    lo, hi = _window(step, during_s)
    faults = [(o, *_window(o, during_s)) for o in others if o.do.role == "fault"]
    overlapping = [o for o, o_lo, o_hi in faults if o_lo < hi and lo < o_hi]
    near = [o for o, o_lo, o_hi in faults if o_lo < hi + CLASH_MARGIN_S and lo < o_hi + CLASH_MARGIN_S]
    return len(overlapping) >= max_overlap or any(_clash(o.do, step.do) for o in near)


def variant(step: StepKind) -> str:
    """A step's variant: its kind and its parameters that are not numbers (the link, the toxic's
    type and direction, a lock mode): numbers vary within a variant, variants are what is covered."""
    named = sorted((k, v) for k, v in step.parameters().items() if isinstance(v, str | bool | None))
    return kind_of(step) + "".join(f" {k}={v}" for k, v in named)


@dataclass
class Drawn:
    """What the schedules so far drew, to draw next what they did not: guidance as in a
    coverage-guided fuzzer, but over the vocabulary. A kind's weight grows with how many of its
    variants are still unseen (a toxic has dozens: type, link, direction; a lock a few) and shrinks
    with how often it was drawn; of a few instances of the kind the least seen variant is taken.
    A budget of tens of runs so reaches every kind and many variants of the broad ones, where
    uniform chance would draw a toxic as rarely as a read-only directory."""

    kinds: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    inside: Counter[str] = field(default_factory=Counter)  # "action in fault kind": which met which
    breadth: dict[str, int] = field(default_factory=dict)  # variants a kind has (estimated by drawing)

    def note(self, scenario: Scenario) -> None:
        for step in scenario.steps:
            if step.do.role == "fault":
                self.kinds[kind_of(step.do)] += 1
                self.variants[variant(step.do)] += 1
        self.inside.update(_inside(scenario, scenario.during_s))

    def weight(self, name: str, cls: type[StepKind], world: World) -> float:
        if name not in self.breadth:
            probe = random.Random(f"breadth:{name}")
            self.breadth[name] = len({variant(m) for m in (cls.draw(probe, world) for _ in range(BREADTH_PROBES))
                                      if m is not None})
        unseen = self.breadth[name] - sum(1 for v in self.variants if v.split(" ", 1)[0] == name)
        return float(max(unseen, 0) + 1) ** 0.5 / (1 + self.kinds[name])

    def pick_kind(self, rng: random.Random, kinds: dict[str, type[StepKind]], world: World) -> type[StepKind]:
        faults = sorted(name for name, cls in kinds.items() if cls.role == "fault")
        return kinds[rng.choices(faults, [self.weight(name, kinds[name], world) for name in faults])[0]]

    def pick_instance(self, rng: random.Random, cls: type[StepKind], world: World) -> StepKind | None:
        made = [m for m in (cls.draw(rng, world) for _ in range(VARIANT_CANDIDATES)) if m is not None]
        return min(made, key=lambda m: self.variants[variant(m)]) if made else None  # first of the least seen


def _draw_fault(rng: random.Random, kinds: dict[str, type[StepKind]], world: World, drawn: Drawn) -> Step | None:
    made = drawn.pick_instance(rng, drawn.pick_kind(rng, kinds, world), world)
    if made is None:
        return None
    at = round(rng.uniform(0.2, world.during_s - 1.0), 1)
    duration = round(rng.uniform(0.8, max(0.9, min(3.5, world.during_s - at))), 1)
    return Step("during", made, at=at, duration=duration)


def _draw_actions(rng: random.Random, kinds: dict[str, type[StepKind]], world: World,
                  faults: list[Step], drawn: Drawn) -> list[Step]:
    """A pause and its resume, an export, more writes: mostly inside a fault's window (that of
    the fault kind this action met least so far), never inside one that leaves the exporter
    unable to answer."""
    away = [_window(f, world.during_s) for f in faults if _keeps_actions_out(f.do)]
    inside = [f for f in faults if not _keeps_actions_out(f.do)]

    def instant(action: str) -> float:
        weights = [1.0 / (1 + drawn.inside[f"{action} in {kind_of(f.do)}"]) ** 2 for f in inside]
        # An action that waits on the exporter (an export job, a pause's grace) runs beside the
        # timeline for a while: it must not still be waiting when the exporter is taken away (found
        # by explore: an export's request cut by a kill a second later read as the exporter's fault).
        lead = WAITING_CLEARANCE_S if action in kinds and kinds[action].waits else 0.2
        for _ in range(20):
            lo, hi = _window(rng.choices(inside, weights)[0], world.during_s) if inside and rng.random() < 0.7 else (
                0.2, world.during_s - 0.3)
            # Early in the window more often than late: an operator acts while the trouble is
            # on, and what an action meets lasts as long as the rest of the window.
            t = round(lo + (max(lo, hi - 0.2) - lo) * rng.random() ** 2, 1)
            if not any(a - lead <= t <= b + 0.5 for a, b in away):
                return t
        # The end of the phase, past every window that takes the exporter away.
        return round(max([world.during_s] + [hi + 0.6 for _lo, hi in away]), 1)

    def after_away(t: float) -> float:
        for lo, hi in sorted(away):
            if lo - 0.2 <= t <= hi + 0.5:
                t = hi + 0.6
        return round(t, 1)

    actions: list[Step] = []
    invited = {name for f in faults for name in f.do.invites}
    for name, cls in sorted(kinds.items()):
        if cls.role == "fault" or cls.draw_share <= 0:
            continue
        if not (rng.random() < cls.draw_share or name in invited):
            continue
        made = cls.draw(rng, world)
        if made is None:
            continue
        if cls.role == "load":  # a load spans the fault phase
            actions.append(Step("during", made, at=0.2, duration=round(world.during_s - 0.4, 1)))
            continue
        t = instant(name)
        # What is left of the window it fell in: an action can fit itself to it (a pause's grace).
        left = max((hi - t for lo, hi in (_window(f, world.during_s) for f in inside) if lo <= t < hi), default=0.0)
        made = made.fitted(left)
        actions.append(Step("during", made, at=t))
        follow = made.follow_up()
        if follow is not None:
            then, after_s = follow
            actions.append(Step("during", then, at=after_away(t + after_s)))
    return actions


def draw_schedule(rng: random.Random, kinds: dict[str, type[StepKind]], plan: ExplorePlan, name: str,
                  drawn: Drawn | None = None) -> Scenario:
    """One random schedule: up to max_overlap + 1 faults, actions among them, a payload profile
    and knobs; a valid Scenario every time."""
    drawn = drawn if drawn is not None else Drawn()
    world = plan.world
    faults: list[Step] = []
    for _ in range(rng.randint(1, plan.max_overlap + 1)):
        step = _draw_fault(rng, kinds, world, drawn)
        if step is not None and not _conflicts(step, faults, plan.during_s, plan.max_overlap):
            faults.append(step)
    if not faults:  # every draw conflicted (rare): one fault alone always fits
        step = None
        while step is None:
            step = _draw_fault(rng, kinds, world, drawn)
        faults.append(step)
    steps = faults + _draw_actions(rng, kinds, world, faults, drawn)
    workload = Workload(records=rng.choice((200, 400)), profile=rng.choice(PROFILES), size=rng.choice(SIZES),
                        chunk=50, seed=rng.randrange(1, 1_000_000), keys=16, write=rng.choice(WRITE_MODES))
    knobs = {knob: rng.choice(values) for knob, values in KNOB_CHOICES.items() if rng.random() < 0.5}
    return _scenario(name, steps, workload, _sharpened(rng, knobs, faults), plan)


def _sharpened(rng: random.Random, knobs: dict[str, str], faults: list[Step]) -> dict[str, str]:
    """The knobs with, most of the time, the sharp settings of each server these faults touch."""
    touched = sorted({service for f in faults for service in _services(f.do)})
    sharp = [SHARP_KNOBS[service] for service in touched if service in SHARP_KNOBS and rng.random() < SHARP_SHARE]
    return dict(knobs, **{k: v for settings in sharp for k, v in settings.items()})


def _scenario(name: str, steps: list[Step], workload: Workload, knobs: dict[str, str], plan: ExplorePlan) -> Scenario:
    for step in steps:  # what a step needs to mean what it says (a full disk, not the guard's refusal)
        knobs = dict(knobs, **step.do.knobs_needed())
    if plan.knobs is not None:  # a target that lacks a knob runs without it rather than being skipped
        knobs = {k: v for k, v in knobs.items() if k in plan.knobs}
    steps = sorted(steps, key=lambda s: (s.at or 0.0, kind_of(s.do)))
    return Scenario(
        name=name, description=f"explore: {', '.join(s.do.describe() for s in steps)}", workload=workload,
        steps=tuple(steps), expect=Expect(recovered_within_s=60.0), knobs=knobs, during_s=plan.during_s,
    ).validate()


def _moved(rng: random.Random, how: str, steps: list[Step], faults: list[int], plan: ExplorePlan) -> list[Step]:
    """One fault shifted, widened or moved to overlap another (unchanged if that would clash)."""
    i = rng.choice(faults)
    step = steps[i]
    at, duration = step.at or 0.0, step.duration or 1.0
    if how == "shift":
        at = at + rng.choice((-1.0, -0.5, 0.5, 1.0))
    elif how == "widen":
        duration = duration * 1.5
    elif how == "overlap" and len(faults) > 1:
        other = steps[rng.choice([j for j in faults if j != i])]
        at = (other.at or 0.0) + rng.uniform(0, (other.duration or 1.0) / 2)
    at = round(min(max(0.2, at), plan.during_s - 0.8), 1)
    duration = round(min(max(0.5, duration), plan.during_s - at), 1)
    moved = dataclasses.replace(step, at=at, duration=duration)
    if _conflicts(moved, [steps[j] for j in faults if j != i], plan.during_s, plan.max_overlap):
        return steps
    return [moved if j == i else s for j, s in enumerate(steps)]


def mutate(rng: random.Random, parent: Scenario, kinds: dict[str, type[StepKind]], plan: ExplorePlan,
           name: str, drawn: Drawn | None = None) -> Scenario:
    """A neighbour of ``parent``: one fault added, dropped, shifted, widened or moved to overlap
    another, or its knobs drawn again. The parent's workload and, but for that last mutation, its
    knobs are kept: they are part of what made its reaction new. Actions that no longer sit right
    are left as they are (a pause still has its resume); the result is a valid Scenario or,
    failing that, a fresh draw."""
    drawn = drawn if drawn is not None else Drawn()
    steps = list(parent.steps)
    knobs = dict(parent.knobs)
    faults = [i for i, s in enumerate(steps) if s.do.role == "fault"]
    how = rng.choice(MUTATIONS)
    if how in ("drop", "overlap") and len(faults) < 2:
        how = rng.choice(("shift", "widen"))  # one fault: nothing to drop or to overlap with
    if how == "add" or not faults:
        new = _draw_fault(rng, kinds, plan.world, drawn)
        if new is not None and not _conflicts(new, [steps[i] for i in faults], plan.during_s, plan.max_overlap):
            steps.append(new)
            knobs = _sharpened(rng, knobs, [new])
    elif how == "drop":
        steps.pop(rng.choice(faults))
    elif how == "knobs":
        knobs = {knob: rng.choice(values) for knob, values in KNOB_CHOICES.items() if rng.random() < 0.5}
        knobs = _sharpened(rng, knobs, [steps[i] for i in faults])
    else:
        steps = _moved(rng, how, steps, faults, plan)
    if not waiting_actions_clear(steps, plan.during_s):
        return draw_schedule(rng, kinds, plan, name, drawn)  # a fault moved onto a waiting action
    try:
        return _scenario(name, steps, parent.workload, knobs, plan)
    except HarnessError:
        return draw_schedule(rng, kinds, plan, name, drawn)


def waiting_actions_clear(steps: list[Step] | tuple[Step, ...], during_s: float) -> bool:
    """No action that waits on the exporter starts within WAITING_CLEARANCE_S before (or inside)
    a window that takes the exporter or a server away."""
    away = [_window(s, during_s) for s in steps if s.do.role == "fault" and _keeps_actions_out(s.do)]
    return not any(lo - WAITING_CLEARANCE_S <= (s.at or 0.0) <= hi + 0.5 for s in steps
                   if s.do.role == "action" and s.do.waits for lo, hi in away)


def signature(result: ScenarioResult) -> str:
    """The exporter's reaction to a run, black-box: which counters moved (delivered aside), the
    kinds of warning and error it logged, and whether pauses answered within their grace."""
    moved = sorted(k for k, v in result.counters.items() if v > 0 and k != "delivered")
    pauses = sorted({f"pause:{'ok' if c.ok else 'late'}" for c in result.checks if c.name == "pause_within_grace"})
    return " | ".join([",".join(moved) or "-", ",".join(pauses) or "-", ";".join(result.log_kinds) or "-"])


def _inside(scenario: Scenario, during_s: float) -> list[str]:
    """Each action that happened inside a fault's window, as "action in fault kind"."""
    faults = [s for s in scenario.steps if s.do.role == "fault"]
    return [f"{kind_of(action.do)} in {kind_of(fault.do)}"
            for action in scenario.steps if action.do.role == "action"
            for fault in faults if _window(fault, during_s)[0] <= (action.at or 0.0) < _window(fault, during_s)[1]]


@dataclass
class Coverage:
    kinds: Counter[str] = field(default_factory=Counter)
    overlaps: Counter[str] = field(default_factory=Counter)
    inside: Counter[str] = field(default_factory=Counter)
    signatures: Counter[str] = field(default_factory=Counter)
    distinct_over_time: list[tuple[int, int]] = field(default_factory=list)

    def note(self, run: int, scenario: Scenario, sig: str | None, during_s: float) -> bool:
        """Count what the run exercised; True when its signature is new."""
        self.kinds.update({kind_of(s.do) for s in scenario.steps})
        faults = [s for s in scenario.steps if s.do.role == "fault"]
        for a, b in itertools.combinations(faults, 2):
            (a_lo, a_hi), (b_lo, b_hi) = _window(a, during_s), _window(b, during_s)
            if a_lo < b_hi and b_lo < a_hi:
                self.overlaps[" + ".join(sorted((kind_of(a.do), kind_of(b.do))))] += 1
        self.inside.update(_inside(scenario, during_s))
        if sig is None:
            return False
        new = sig not in self.signatures
        self.signatures[sig] += 1
        if new:
            self.distinct_over_time.append((run, len(self.signatures)))
        return new


def schedules(plan: ExplorePlan, kinds: dict[str, type[StepKind]],
              corpus: list[Scenario]) -> Iterator[tuple[int, Scenario, bool]]:
    """(run number, schedule, mutated?) for run 1, 2, ...: each from its own Random seeded by
    (seed, run), and guided by what the schedules before it drew (``Drawn``). With an empty corpus
    the sequence is fixed by the seed (``--plan-only`` prints it); the corpus only grows with what
    earlier runs showed, itself deterministic for a deterministic exporter."""
    drawn = Drawn()
    for run in itertools.count(1):
        rng = random.Random(f"faultline-explore:{plan.seed}:{run}")
        name = f"explore_s{plan.seed}_r{run}"
        mutating = rng.random() >= FRESH_SHARE
        if corpus and mutating:
            scenario, mutated = mutate(rng, rng.choice(corpus), kinds, plan, name, drawn), True
        else:
            scenario, mutated = draw_schedule(rng, kinds, plan, name, drawn), False
        drawn.note(scenario)
        yield run, scenario, mutated


def failure_group(result: ScenarioResult, scenario: Scenario) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(c.name for c in result.violations), frozenset(kind_of(s.do) for s in scenario.steps)


def summary(plan: ExplorePlan, runs: int, coverage: Coverage, never: dict[str, str], failures: list[ExploreFailure],
            errors: int, mutated: int, seconds: float) -> ExploreSummary:
    return ExploreSummary(
        seed=plan.seed, runs=runs, failures=failures, harness_errors=errors, kinds=dict(coverage.kinds.most_common()),
        never_drawn=never, overlaps=dict(coverage.overlaps.most_common()), inside=dict(coverage.inside.most_common()),
        signatures=dict(coverage.signatures.most_common()), distinct_over_time=coverage.distinct_over_time,
        mutated=mutated, seconds=round(seconds, 1))


def judged(result: ScenarioResult) -> bool:
    """A run the exporter is answerable for: passed or failed (not a harness error or a skip)."""
    return result.verdict in (Verdict.PASS, Verdict.FAIL)
