"""``faultline compare RUN_A RUN_B``: what changed between two runs (a release and the next)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.report.report_file import read_report
from harness.report.result import RunReport, ScenarioResult


def load(run_dir: Path) -> RunReport:
    """A run's report.json, validated (a missing, foreign or malformed one is exit 2)."""
    return read_report(run_dir / "report.json")


@dataclass
class ScenarioChange:
    scenario: str
    verdict_a: str  # "absent" when the scenario was not in that run; "pass/pass/fail" over repeat rounds
    verdict_b: str
    recovery_a: float | None
    recovery_b: float | None
    violations_b: list[str]
    throughput_under_fault: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # Change anomalies (the judge of histories) per class, in the last round of each run.
    changes: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def verdict_changed(self) -> bool:
        return self.verdict_a != self.verdict_b


def throughput_by_fault(scenario: ScenarioResult | None) -> dict[str, float]:
    """Mean delivered records/s inside each fault window, keyed by the step's description."""
    if scenario is None or scenario.series is None:
        return {}
    points = scenario.series.delivered_per_s
    out = {}
    for step in scenario.steps:
        start, end = step.applied_at, step.removed_at
        if start is None or end is None or end <= start:
            continue
        inside = [v for t, v in points if start <= t < end]
        out[step.description] = round(sum(inside) / len(inside), 1) if inside else 0.0
    return out


def _rounds(report: RunReport) -> dict[str, list[ScenarioResult]]:
    """Each scenario's results in run order: one per ``--repeat`` round."""
    out: dict[str, list[ScenarioResult]] = {}
    for result in report.scenarios:
        out.setdefault(result.name, []).append(result)
    return out


def _slowest(results: list[ScenarioResult]) -> float | None:
    times = [r.recovery_s for r in results if r.recovery_s is not None]
    return max(times) if times else None


def compare(a: RunReport, b: RunReport) -> list[ScenarioChange]:
    by_a, by_b = _rounds(a), _rounds(b)
    rows = []
    for name in sorted(set(by_a) | set(by_b)):
        ra, rb = by_a.get(name, []), by_b.get(name, [])
        ta, tb = throughput_by_fault(ra[-1] if ra else None), throughput_by_fault(rb[-1] if rb else None)
        rows.append(ScenarioChange(
            scenario=name, verdict_a="/".join(str(r.verdict) for r in ra) or "absent",
            verdict_b="/".join(str(r.verdict) for r in rb) or "absent",
            recovery_a=_slowest(ra), recovery_b=_slowest(rb),
            violations_b=sorted({c.name for r in rb for c in r.violations}),
            throughput_under_fault={fault: (ta.get(fault), tb.get(fault)) for fault in sorted(set(ta) | set(tb))},
            changes=_change_counts(ra[-1] if ra else None, rb[-1] if rb else None)))
    return rows


def _change_counts(a: ScenarioResult | None, b: ScenarioResult | None) -> dict[str, tuple[int, int]]:
    counts_a = a.changes.counts if a is not None and a.changes is not None else {}
    counts_b = b.changes.counts if b is not None and b.changes is not None else {}
    return {cls: (counts_a.get(cls, 0), counts_b.get(cls, 0)) for cls in sorted(set(counts_a) | set(counts_b))}


def regressions(rows: list[ScenarioChange], recovery_factor: float) -> list[str]:
    """What got worse from A to B: a scenario that held in every round of A and not in some round
    of B, or whose slowest recovery grew by more than ``recovery_factor``. A scenario A judged
    that B does not have at all is a regression too: a gate that stopped judging it proves less."""
    found = []
    for row in rows:
        held_before = row.verdict_a != "absent" and set(row.verdict_a.split("/")) == {"pass"}
        if row.verdict_a != "absent" and row.verdict_b == "absent":
            found.append(f"{row.scenario}: {row.verdict_a} -> absent (B did not judge it)")
        elif held_before and row.verdict_b != "absent" and set(row.verdict_b.split("/")) != {"pass"}:
            found.append(f"{row.scenario}: {row.verdict_a} -> {row.verdict_b} ({', '.join(row.violations_b) or '-'})")
        elif worse := [f"{cls} {a} -> {b}" for cls, (a, b) in row.changes.items() if b > a]:
            found.append(f"{row.scenario}: more change anomalies ({', '.join(worse)})")
        elif row.recovery_a and row.recovery_b and row.recovery_b > recovery_factor * row.recovery_a:
            found.append(f"{row.scenario}: recovery {row.recovery_a:.1f}s -> {row.recovery_b:.1f}s "
                         f"(more than {recovery_factor}x)")
    return found
