"""Drawing and mutating explore's schedules (see ``harness.search.explore``): faults guided by what was
drawn before (``Drawn``), actions in the windows they met least, workloads and knobs; a mutation
is a valid neighbour of a corpus entry. Deterministic in the ``random.Random`` it is given."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

from harness.catalogue.scenario import Expect, Scenario, Step, Workload
from harness.errors import HarnessError
from harness.model.capabilities import Need
from harness.model.changes import OPERATIONS, ChangeMix
from harness.model.profiles import PROFILES as payload_profiles
from harness.report.journal import StepRecord
from harness.rig.workload import WriteMode
from harness.search.explore_plan import (
    WAITING_CLEARANCE_S,
    ExplorePlan,
    conflicts,
    inside_windows,
    keeps_actions_out,
    services,
    variant,
    waiting_actions_clear,
    window,
)
from harness.steps import StepKind, World, kind_of

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
INTO_WAITS_SHARE = 0.9  # of the faults that meet waits, moved into one when there is one
MUTATIONS = ("add", "drop", "shift", "widen", "overlap", "knobs", "vary")
VARIANT_CANDIDATES = 4  # instances of a kind drawn to pick the least seen variant from
BREADTH_PROBES = 200  # instances drawn once per kind to estimate how many variants it has
FRESH_SHARE = 0.5  # of the runs once the corpus is not empty, drawn from scratch


@dataclass
class Drawn:
    """What the schedules so far drew, to draw next what they did not: guidance as in a
    coverage-guided fuzzer, but over the vocabulary. A kind's weight grows with how many of its
    variants are still unseen (a toxic has dozens: type, link, direction; a lock a few) and shrinks
    with how often it was drawn; of a few instances of the kind the least seen variant is taken.
    A budget of tens of runs so reaches every kind and many variants of the broad ones, where
    uniform chance would draw a toxic as rarely as a read-only directory."""

    kinds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # reaching nothing: half
    variants: Counter[str] = field(default_factory=Counter)
    inside: Counter[str] = field(default_factory=Counter)  # "action in fault kind": which met which
    breadth: dict[str, int] = field(default_factory=dict)  # variants a kind has (estimated by drawing)

    def note(self, scenario: Scenario) -> None:
        for step in scenario.steps:
            if step.do.role == "fault":
                self.kinds[kind_of(step.do)] += 1
                self.variants[variant(step.do)] += 1
        self.inside.update(inside_windows(scenario, scenario.during_s))

    def unreached(self, scenario: Scenario, records: list[StepRecord]) -> list[str]:
        """Take back the variants of the faults that injected nothing in the run (a file error
        from the 2nd fsync on, in a window with one): drawn but not covered, as a fuzzer counts
        an edge only once it was executed. Their kind keeps half its count (UNREACHED_COUNTS), so
        it comes back sooner, but a fault that cannot reach anything here does not crowd the
        others out. The variants taken back."""
        injected = {r.description: r.result.get("injected") for r in records
                    if r.fault and isinstance(r.result, dict)}
        missed = [variant(s.do) for s in scenario.steps
                  if s.do.role == "fault" and injected.get(s.do.describe(), None) == 0]
        for name in missed:
            self.variants[name] -= 1
            self.kinds[name.split(" ", 1)[0]] -= 1 - UNREACHED_COUNTS
        return missed

    def weight(self, name: str, cls: type[StepKind], world: World) -> float:
        if name not in self.breadth:
            probe = random.Random(f"breadth:{name}")
            self.breadth[name] = len({variant(m) for m in (cls.draw(probe, world) for _ in range(BREADTH_PROBES))
                                      if m is not None})
        unseen = self.breadth[name] - sum(1 for v in self.variants if v.split(" ", 1)[0] == name)
        # A kind never drawn comes first whatever its breadth: with many broad kinds (toxics,
        # protocol and file errors) the narrow ones would otherwise wait past a short budget.
        first = NEVER_DRAWN_BOOST if self.kinds[name] == 0 else 1.0
        return first * float(max(unseen, 0) + 1) ** 0.5 / (1 + self.kinds[name])

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
    return Step("during", made, at=at, duration=max(duration, made.min_window_s))


def _draw_actions(rng: random.Random, kinds: dict[str, type[StepKind]], world: World,
                  faults: list[Step], drawn: Drawn) -> list[Step]:
    """A pause and its resume, an export, more writes: mostly inside a fault's window (that of
    the fault kind this action met least so far), never inside one that leaves the exporter
    unable to answer."""
    away = [window(f, world.during_s) for f in faults if keeps_actions_out(f.do)]
    inside = [f for f in faults if not keeps_actions_out(f.do)]

    def instant(action: str) -> float:
        weights = [1.0 / (1 + drawn.inside[f"{action} in {kind_of(f.do)}"]) ** 2 for f in inside]
        # An action that waits on the exporter (an export job, a pause's grace) runs beside the
        # timeline for a while: it must not still be waiting when the exporter is taken away (found
        # by explore: an export's request cut by a kill a second later read as the exporter's fault).
        lead = WAITING_CLEARANCE_S if action in kinds and kinds[action].waits else 0.2
        for _ in range(20):
            lo, hi = window(rng.choices(inside, weights)[0], world.during_s) if inside and rng.random() < 0.7 else (
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
        left = max((hi - t for lo, hi in (window(f, world.during_s) for f in inside) if lo <= t < hi), default=0.0)
        made = made.fitted(left)
        actions.append(Step("during", made, at=t))
        follow = made.follow_up()
        if follow is not None:
            then, after_s = follow
            actions.append(Step("during", then, at=after_away(t + after_s)))
    return actions


FILE_SINK = Need.sink("file_sink")
NEVER_DRAWN_BOOST = 4.0
UNREACHED_COUNTS = 0.5  # of a draw, for its kind, when the fault injected nothing
MEET_FAULTS = (0, 30, 30, 60)


def draw_schedule(rng: random.Random, kinds: dict[str, type[StepKind]], plan: ExplorePlan, name: str,
                  drawn: Drawn | None = None) -> Scenario:
    """One random schedule: up to max_overlap + 1 faults, actions among them, a payload profile
    and knobs; a valid Scenario every time."""
    drawn = drawn if drawn is not None else Drawn()
    world = plan.world
    faults: list[Step] = []
    for _ in range(rng.randint(1, plan.max_overlap + 1)):
        step = _draw_fault(rng, kinds, world, drawn)
        if step is not None and not conflicts(step, faults, plan.during_s, plan.max_overlap):
            faults.append(step)
    if not faults:  # every draw conflicted (rare): one fault alone always fits
        step = None
        while step is None:
            step = _draw_fault(rng, kinds, world, drawn)
        faults.append(step)
    actions = _draw_actions(rng, kinds, world, faults, drawn)
    faults = _into_waits(rng, faults, actions, plan)
    steps = faults + [_refitted(a, faults, world) for a in actions]
    # Writes that meet each fault as it starts, most of the time: a fault answered one request at
    # a time proves nothing unless requests flow while it is in force.
    workload = Workload(records=rng.choice((200, 400)), profile=rng.choice(PROFILES), size=rng.choice(SIZES),
                        chunk=50, seed=rng.randrange(1, 1_000_000), keys=16, write=rng.choice(WRITE_MODES),
                        meet_faults=rng.choice(MEET_FAULTS))
    knobs = {knob: rng.choice(values) for knob, values in KNOB_CHOICES.items() if rng.random() < 0.5}
    if not any(step.do.loses_source_writes() for step in steps):  # no change log survives such a step yet
        workload = dataclasses.replace(workload, changes=draw_changes(workload.seed, plan.changes))
    return _scenario(name, steps, workload, _sharpened(rng, knobs, faults), plan)


CHANGES_SHARE = 0.4  # of the schedules, those that write changes too (when the target carries them)


def draw_changes(seed: int, carried: tuple[str, ...]) -> ChangeMix | None:
    """A change workload of the operations the target carries, or None. Drawn from the workload's
    own seed, not the schedule's generator: the schedules a seed drew before change workloads
    existed are drawn the same (a failure found at run 64 is found at run 64 still)."""
    if not carried or "insert" not in carried:
        return None
    rng = random.Random(seed * 7919 + 27)
    if rng.random() >= CHANGES_SHARE:
        return None
    weights = {op: (rng.choice((1, 2, 4)) if op in carried else 0) for op in OPERATIONS}
    total = sum(weights.values())
    shares = {op: round(w / total, 3) for op, w in weights.items() if op != "insert"}
    return ChangeMix(count=rng.choice((200, 400, 800)), insert=round(1 - sum(shares.values()), 3), **shares,
                     transactions=rng.choice((0.0, 0.3, 0.7)), transaction_size=(2, rng.choice((3, 5, 10))),
                     hot=rng.choice((0.0, 0.3, 0.8)), burst=rng.choice((4, 12)), chunk=40)


def _into_waits(rng: random.Random, faults: list[Step], actions: list[Step], plan: ExplorePlan) -> list[Step]:
    """Faults whose kind ``meets_waits`` start, most of the time, a moment after an action that
    waits on a deadline (found needed: a clock step drawn before a pause moves the deadline with it
    and shows nothing; one inside the grace puts the deadline out of reach), their length kept."""
    placed = list(faults)
    for i, fault in enumerate(faults):
        # The waits it meets best: the actions it invites (a pause), else any that waits.
        waits = [a for a in actions if a.do.waits and (kind_of(a.do) in fault.do.invites or not fault.do.invites)]
        if not (fault.do.meets_waits and waits) or rng.random() >= INTO_WAITS_SHARE:
            continue
        start = round((rng.choice(waits).at or 0.0) + 0.3, 1)
        lo, hi = window(fault, plan.during_s)
        length = max(round(min(hi - lo, plan.during_s - 0.2 - start), 1), fault.do.min_window_s)
        if length < 0.5:
            continue
        moved = dataclasses.replace(fault, at=start, duration=length)
        if not conflicts(moved, placed[:i] + placed[i + 1:], plan.during_s, plan.max_overlap):
            placed[i] = moved
    return placed


def _refitted(action: Step, faults: list[Step], world: World) -> Step:
    """An action fitted again to what is left of the window it is in, once faults have moved."""
    if action.do.role != "action":
        return action
    t = action.at or 0.0
    left = max((hi - t for lo, hi in (window(f, world.during_s) for f in faults if not keeps_actions_out(f.do))
                if lo <= t < hi), default=0.0)
    fitted = action.do.fitted(left)
    return action if fitted == action.do else dataclasses.replace(action, do=fitted)


def _sharpened(rng: random.Random, knobs: dict[str, str], faults: list[Step]) -> dict[str, str]:
    """The knobs with, most of the time, the sharp settings of each server these faults touch."""
    touched = sorted({service for f in faults for service in services(f.do)})
    sharp = [SHARP_KNOBS[service] for service in touched if service in SHARP_KNOBS and rng.random() < SHARP_SHARE]
    return dict(knobs, **{k: v for settings in sharp for k, v in settings.items()})


def _scenario(name: str, steps: list[Step], workload: Workload, knobs: dict[str, str], plan: ExplorePlan) -> Scenario:
    for step in steps:  # what a step needs to mean what it says (a full disk, not the guard's refusal)
        knobs = dict(knobs, **step.do.knobs_needed())
    if plan.knobs is not None:  # a target that lacks a knob runs without it rather than being skipped
        knobs = {k: v for k, v in knobs.items() if k in plan.knobs}
    steps = sorted(steps, key=lambda s: (s.at or 0.0, kind_of(s.do)))
    # A fault on the file sink's directory means something only when records go there.
    sink: Literal["kafka", "file"] = "file" if any(FILE_SINK in step.do.needs() for step in steps) else "kafka"
    # A window a kind keeps long (min_window_s) lengthens the phase: the phase ends after it.
    during_s = max([plan.during_s] + [round((s.at or 0.0) + s.duration + 0.2, 1) for s in steps
                                      if s.duration is not None and s.do.min_window_s])
    return Scenario(
        name=name, description=f"explore: {', '.join(s.do.describe() for s in steps)}", workload=workload,
        steps=tuple(steps), knobs=knobs, during_s=during_s, sink=sink,
        # Drawn blind, a protocol fault may match no request the target sends: not a finding.
        expect=Expect(recovered_within_s=60.0, protocol_faults_met=False),
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
    duration = max(round(min(max(0.5, duration), plan.during_s - at), 1), step.do.min_window_s)
    moved = dataclasses.replace(step, at=at, duration=duration)
    if conflicts(moved, [steps[j] for j in faults if j != i], plan.during_s, plan.max_overlap):
        return steps
    return [moved if j == i else s for j, s in enumerate(steps)]


def _varied(rng: random.Random, steps: list[Step], faults: list[int], plan: ExplorePlan, drawn: Drawn) -> list[Step]:
    """One fault becomes another variant of its kind, in the same window (the least seen of a
    few drawn): a close failing on the file sink made the exporter react in a new way, so the
    fsync failing there is worth a run. Unchanged if the variant would clash with the others."""
    i = rng.choice(faults)
    other = drawn.pick_instance(rng, type(steps[i].do), plan.world)
    if other is None:
        return steps
    varied = dataclasses.replace(steps[i], do=other)
    if conflicts(varied, [steps[j] for j in faults if j != i], plan.during_s, plan.max_overlap):
        return steps
    return [varied if j == i else s for j, s in enumerate(steps)]


def mutate(rng: random.Random, parent: Scenario, kinds: dict[str, type[StepKind]], plan: ExplorePlan,
           name: str, drawn: Drawn | None = None) -> Scenario:
    """A neighbour of ``parent``: one fault added, dropped, shifted, widened, moved to overlap
    another or turned into another variant of its kind, or its knobs drawn again. The parent's
    workload and, but for that last mutation, its knobs are kept: they are part of what made its
    reaction new. Actions that no longer sit right
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
        if new is not None and not conflicts(new, [steps[i] for i in faults], plan.during_s, plan.max_overlap):
            steps.append(new)
            knobs = _sharpened(rng, knobs, [new])
    elif how == "drop":
        steps.pop(rng.choice(faults))
    elif how == "knobs":
        knobs = {knob: rng.choice(values) for knob, values in KNOB_CHOICES.items() if rng.random() < 0.5}
        knobs = _sharpened(rng, knobs, [steps[i] for i in faults])
    elif how == "vary":
        steps = _varied(rng, steps, faults, plan, drawn)
    else:
        steps = _moved(rng, how, steps, faults, plan)
    if not waiting_actions_clear(steps, plan.during_s):
        return draw_schedule(rng, kinds, plan, name, drawn)  # a fault moved onto a waiting action
    workload = parent.workload
    if workload.changes is None and plan.changes and not any(s.do.loses_source_writes() for s in steps):
        # A parent without changes passes its schedule on with changes drawn for the child, from
        # the child's name (not ``rng``: the faults mutated for a seed stay what they were).
        workload = dataclasses.replace(workload, changes=draw_changes(_name_seed(name), plan.changes))
    try:
        return _scenario(name, steps, workload, knobs, plan)
    except HarnessError:
        return draw_schedule(rng, kinds, plan, name, drawn)


def _name_seed(name: str) -> int:
    return int.from_bytes(name.encode()[-8:].rjust(8, b"\0"), "big") % 1_000_000



