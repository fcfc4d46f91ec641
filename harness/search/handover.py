"""Handing a failure over: replayed and measured before it is written up, amplified when it
replays too rarely (``harness.search.amplify``), each file stating its rate.

What explore and ``faultline reproduce --amplify`` share. A finding's incident file gets a
``[reproduction]`` table with the measured rate (``reproduced = "3/5"``); an amplified variant is
written beside it (``<name>.amp.toml``) with its own rate and, in its header, what was changed to
get there. Shrink then works on the more reliable of the two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.catalogue.scenario import Scenario
from harness.model.target import TargetDefinition
from harness.play.gate import reproduction_record
from harness.report.result import ScenarioResult
from harness.search.amplify import BUDGET_RUNS, Amplified, FailureShape, Rate, Run, amplify, measure
from harness.search.reproduce import write_measured

REPLAYS = 3  # replays of every finding before it is written up (more with --replays)


@dataclass(frozen=True)
class HandOver:
    """How a finding was handed over: the replays' rate and, when amplified, the variant."""

    shape: FailureShape
    rate: Rate
    amplified: Amplified | None = None
    amplified_path: Path | None = None

    @property
    def best(self) -> tuple[Scenario | None, Rate]:
        """The variant to shrink and to replay: the amplified one when it fails more often."""
        if self.amplified is not None and self.amplified.changes and self.amplified.rate.share > self.rate.share:
            return self.amplified.scenario, self.amplified.rate
        return None, self.rate

    def said(self) -> str:
        """One line for a person: the rate, and what amplifying did."""
        line = self.rate.said()
        amp = self.amplified
        if amp is None:
            return line
        if not amp.changes:
            return f"{line}; amplifying found no variant that fails more often ({amp.runs} runs)"
        outcome = "" if amp.reached else (
            f" (not confirmed on fresh runs within {amp.runs} runs)" if amp.rate.reaches(amp.goal, amp.of)
            else f" (short of {amp.goal}/{amp.of} within {amp.runs} runs)")
        return f"{line}; amplified: {amp.rate.said(found_once=False)}{outcome} after {'; '.join(amp.changes)}"


@dataclass(frozen=True)
class Measuring:
    """What a hand-over needs to know: how to run a schedule, and what to write in its files."""

    run: Run
    target: TargetDefinition
    servers: dict[str, str]
    defect: str | None
    replays: int = REPLAYS
    amplify_runs: int = BUDGET_RUNS
    log: Callable[[str], None] = lambda _m: None


def hand_over(scenario: Scenario, shape: FailureShape, path: Path, how: Measuring,
              measured: Rate | None = None) -> HandOver:
    """Replay the failure of ``scenario`` (written at ``path``; ``shape``: what failing the same
    way means), write its rate into the file, and amplify it when it fails fewer than 9 of 10
    replays. ``measured``: a rate already measured on fresh runs (then it is not replayed again)."""
    rate = measured if measured is not None else (
        measure(scenario, how.run, shape, how.replays, how.log) if how.replays else Rate(0, 0))
    if rate.runs:
        _write_rate(scenario, path, rate, shape, how)
    if rate.runs and rate.reaches() or not how.amplify_runs:
        return HandOver(shape, rate)
    how.log(f"{rate.said()}: amplifying ({shape.describe()}), within {how.amplify_runs} runs")
    knobs = frozenset(k for k, setting in how.target.knobs.items() if setting)
    # Not replayed: the one failing run is all there is to beat.
    found = amplify(scenario, how.run, shape, rate if rate.runs else Rate(1, 1), knobs=knobs,
                    budget_runs=how.amplify_runs, log=how.log)
    if not found.changes:
        return HandOver(shape, rate, found)
    destination = path.with_name(path.stem + ".amp.toml")
    variant = dataclasses.replace(found.scenario, name=f"{scenario.name}_amp", description=(
        f"{scenario.description} (amplified: {'; '.join(found.changes)})")[:2000])
    _write_rate(variant, destination, found.rate, shape, how, comment=(
        f"Amplified from {path.name} ({rate.said()}) in {found.runs} runs: "
        + "; ".join(found.changes) + "."))
    return HandOver(shape, rate, found, destination)


def _write_rate(scenario: Scenario, path: Path, rate: Rate, shape: FailureShape, how: Measuring,
                comment: str | None = None) -> None:
    record = dataclasses.replace(
        reproduction_record(ScenarioResult(scenario.name, "", None), how.target, how.servers, scenario.workload.seed,
                            rate.failed, rate.runs,
                            how.defect), violates=tuple(sorted(shape.checks)))
    write_measured(scenario, record, path, comment, measured=f"Measured: {rate.said()} ({shape.describe()})")
