"""``faultline compare RUN_A RUN_B``: what changed between two runs (a release and the next)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.result import RunReport, ScenarioResult, read_report


def load(run_dir: Path) -> RunReport:
    """A run's report.json, validated (a missing, foreign or malformed one is exit 2)."""
    return read_report(run_dir / "report.json")


@dataclass
class ScenarioChange:
    scenario: str
    verdict_a: str  # "absent" when the scenario was not in that run
    verdict_b: str
    recovery_a: float | None
    recovery_b: float | None
    violations_b: list[str]
    throughput_under_fault: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

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


def compare(a: RunReport, b: RunReport) -> list[ScenarioChange]:
    by_a = {s.name: s for s in a.scenarios}
    by_b = {s.name: s for s in b.scenarios}
    rows = []
    for name in sorted(set(by_a) | set(by_b)):
        sa, sb = by_a.get(name), by_b.get(name)
        ta, tb = throughput_by_fault(sa), throughput_by_fault(sb)
        rows.append(ScenarioChange(
            scenario=name, verdict_a=str(sa.verdict) if sa else "absent", verdict_b=str(sb.verdict) if sb else "absent",
            recovery_a=sa.recovery_s if sa else None, recovery_b=sb.recovery_s if sb else None,
            violations_b=[c.name for c in sb.violations] if sb else [],
            throughput_under_fault={fault: (ta.get(fault), tb.get(fault)) for fault in sorted(set(ta) | set(tb))}))
    return rows
