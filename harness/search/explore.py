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

import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.catalogue.scenario import Scenario
from harness.report.result import ExploreFailure, ExploreSummary, ScenarioResult, Verdict
from harness.search.explore_draw import FRESH_SHARE, Drawn, draw_schedule, mutate
from harness.search.explore_plan import ExploreError, ExplorePlan, drawable, for_target, inside_windows, window
from harness.steps import StepKind, kind_of

__all__ = ["Coverage", "Drawn", "ExploreError", "ExplorePlan", "drawable", "failure_group", "for_target", "judged",
           "mutate", "schedules", "signature", "summary"]


def signature(result: ScenarioResult) -> str:
    """The exporter's reaction to a run, black-box: which counters moved (delivered aside), the
    kinds of warning and error it logged, whether pauses answered within their grace and held."""
    moved = sorted(k for k, v in result.counters.items() if v > 0 and k != "delivered")
    pauses = sorted({f"pause:{'ok' if c.ok else 'late'}" for c in result.checks if c.name == "pause_within_grace"}
                    | {"pause:moved" for c in result.checks if c.name == "pause_honoured" and not c.ok})
    return " | ".join([",".join(moved) or "-", ",".join(pauses) or "-", ";".join(result.log_kinds) or "-"])


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
        mix = scenario.workload.changes
        if mix is not None:  # which change operations the run wrote: the judge of histories' reach
            self.kinds.update(f"changes:{op}" for op in sorted(mix.operations))
        faults = [s for s in scenario.steps if s.do.role == "fault"]
        for a, b in itertools.combinations(faults, 2):
            (a_lo, a_hi), (b_lo, b_hi) = window(a, during_s), window(b, during_s)
            if a_lo < b_hi and b_lo < a_hi:
                self.overlaps[" + ".join(sorted((kind_of(a.do), kind_of(b.do))))] += 1
        self.inside.update(inside_windows(scenario, during_s))
        if sig is None:
            return False
        new = sig not in self.signatures
        self.signatures[sig] += 1
        if new:
            self.distinct_over_time.append((run, len(self.signatures)))
        return new


def schedules(plan: ExplorePlan, kinds: dict[str, type[StepKind]], corpus: list[Scenario],
              drawn: Drawn | None = None) -> Iterator[tuple[int, Scenario, bool]]:
    """(run number, schedule, mutated?) for run 1, 2, ...: each from its own Random seeded by
    (seed, run), and guided by what the schedules before it drew (``Drawn``; the caller that runs
    them tells it which faults reached nothing). With an empty corpus and nothing reported the
    sequence is fixed by the seed (``--plan-only`` prints it); the corpus only grows with what
    earlier runs showed, itself deterministic for a deterministic exporter."""
    drawn = drawn if drawn is not None else Drawn()
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
        mutated=mutated, seconds=round(seconds, 1), shard=f"{plan.shard[0]}/{plan.shard[1]}" if plan.shard else "")


def judged(result: ScenarioResult) -> bool:
    """A run the exporter is answerable for: passed or failed (not a harness error or a skip)."""
    return result.verdict in (Verdict.PASS, Verdict.FAIL)
