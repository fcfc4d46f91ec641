"""``faultline reproduce FILE --repeat N``: how often an incident fails the way it says it does.

A replay that passes once proves little when the incident fails only some of the time: the rate
is what tells a fixed bug from a lucky run. A repeat "failed the same way" when its verdict is
fail and it violated every check the incident file names (``[reproduction] violates``; without
one, the checks the first failing repeat violated).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from harness.catalogue import incident
from harness.catalogue.scenario import Reproduction, Scenario
from harness.model.plugins import load_target
from harness.play.gate import EXIT_HARNESS, EXIT_OK, EXIT_VIOLATION, GateRun, reproduction_record
from harness.report.result import ScenarioResult, Verdict


def expected_violations(scenario: Scenario, results: list[ScenarioResult]) -> frozenset[str]:
    if scenario.reproduction is not None and scenario.reproduction.violates:
        return frozenset(scenario.reproduction.violates)
    first = next((r for r in results if r.verdict is Verdict.FAIL), None)
    return frozenset(c.name for c in first.violations) if first else frozenset()


@dataclass(frozen=True)
class RepeatOutcome:
    runs: int
    failed_same: int  # failed, violating every expected check
    failed_other: int  # failed, but not (only) the way the incident says
    errors: int
    expected: frozenset[str]

    @classmethod
    def of(cls, scenario: Scenario, results: list[ScenarioResult]) -> RepeatOutcome:
        expected = expected_violations(scenario, results)
        same = sum(1 for r in results if r.verdict is Verdict.FAIL and expected <= {c.name for c in r.violations})
        failed = sum(1 for r in results if r.verdict is Verdict.FAIL)
        errors = sum(1 for r in results if r.verdict is Verdict.ERROR)
        return cls(len(results), same, failed - same, errors, expected)

    @property
    def rate(self) -> str:
        return f"{self.failed_same}/{self.runs}"

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_HARNESS
        return EXIT_VIOLATION if self.failed_same or self.failed_other else EXIT_OK

    def summary(self) -> str:
        checks = ", ".join(sorted(self.expected)) or "its checks"
        if self.errors:
            return f"{self.errors} of {self.runs} repeats could not run (harness error): no rate"
        if self.failed_same == self.runs:
            return f"failed {self.rate}: the incident reproduces every time (violates {checks})"
        if self.failed_same:
            return (f"failed {self.rate}: the incident is flaky; it fails ({checks}) only some of the time, so a "
                    "passing replay does not prove the bug gone")
        if self.failed_other:
            return (f"failed 0/{self.runs} the way the incident says ({checks}), but {self.failed_other} repeat(s) "
                    "failed in another way")
        return f"failed 0/{self.runs}: held every time (the incident does not reproduce here)"


def record_rate(path: Path, scenario: Scenario, outcome: RepeatOutcome, gate: GateRun, defect: str | None) -> Path:
    """Rewrite the incident file with its measured [reproduction] table; its header comment stays."""
    meta = json.loads((gate.out / "report.json").read_text())
    target = load_target(Path(meta["target"]))
    record = dataclasses.replace(
        reproduction_record(gate.results[0], target, gate.servers, scenario.workload.seed,
                            outcome.failed_same, outcome.runs, defect),
        violates=tuple(sorted(outcome.expected)))
    return write_measured(scenario, record, path)


def write_measured(scenario: Scenario, record: Reproduction, path: Path, comment: str | None = None,
                   measured: str = "") -> Path:
    """(Re)write ``path`` with ``record`` as its [reproduction] table; its header comment stays
    unless ``comment`` replaces it, and ``measured`` is added under it."""
    head = comment if comment is not None else leading_comment(path) if path.exists() else ""
    return incident.write(dataclasses.replace(scenario, reproduction=record), path,
                          comment="\n".join(part for part in (head, measured) if part))


def leading_comment(path: Path) -> str:
    """The comment block at the top of a file (what a person wrote about the incident)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines)
