"""How often a failure replays the same way: ``FailureShape`` (what "the same way" means) and
``Rate`` (of so many replays, so many failed so), as the gate, explore and amplify measure them
and every report says them."""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.result import ScenarioResult, Verdict

GOAL = 9  # of RUNS: a failure that replays this often is a reliable one
RUNS = 10


def lost_hops(result: ScenarioResult) -> frozenset[str]:
    return frozenset(result.ledger.lost_hops.values()) if result.ledger is not None else frozenset()


@dataclass(frozen=True)
class FailureShape:
    """What "failing the same way" means for a finding: every check it violated is violated
    again, and, when it lost records, some are lost at one of the same hops."""

    checks: frozenset[str]
    hops: frozenset[str] = frozenset()

    @classmethod
    def of(cls, result: ScenarioResult) -> FailureShape:
        return cls(frozenset(c.name for c in result.violations), lost_hops(result))

    def matches(self, result: ScenarioResult) -> bool:
        if result.verdict is not Verdict.FAIL or not self.checks:
            return False
        if not self.checks <= {c.name for c in result.violations}:
            return False
        return not self.hops or bool(self.hops & lost_hops(result))

    def describe(self) -> str:
        hops = f" (lost at {', '.join(sorted(self.hops))})" if self.hops else ""
        return f"violates {', '.join(sorted(self.checks))}{hops}"


@dataclass(frozen=True)
class Rate:
    """Of ``runs`` replays, how many failed the same way."""

    failed: int
    runs: int

    def __str__(self) -> str:
        return f"{self.failed}/{self.runs}"

    @property
    def share(self) -> float:
        return self.failed / self.runs if self.runs else 0.0

    def reaches(self, goal: int = GOAL, of: int = RUNS) -> bool:
        return self.runs > 0 and self.failed * of >= goal * self.runs

    def said(self, found_once: bool = True) -> str:
        """As a person reads it: "reproduces 10/10", "3/10", or "0/10, found once"."""
        if self.runs == 0:
            return "not replayed (found once)"
        if self.failed == 0:
            return f"reproduces 0/{self.runs}" + (", found once" if found_once else "")
        return f"reproduces {self}"
