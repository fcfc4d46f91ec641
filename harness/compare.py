"""``faultline compare RUN_A RUN_B``: what changed between two runs (a release and the next)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def load(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "report.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise HarnessError(f"{run_dir} holds no report.json; point at a directory `faultline run` wrote") from exc
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path} is not valid JSON: {exc}") from exc


def throughput_by_fault(scenario: dict[str, Any]) -> dict[str, float]:
    """Mean delivered records/s inside each fault window, keyed by the step's description."""
    points = (scenario.get("series") or {}).get("delivered_per_s", [])
    out = {}
    for step in scenario.get("steps", []):
        start, end = step.get("applied_at"), step.get("removed_at")
        if start is None or end is None or end <= start:
            continue
        inside = [v for t, v in points if start <= t < end]
        out[step["description"]] = round(sum(inside) / len(inside), 1) if inside else 0.0
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    by_a = {s["name"]: s for s in a.get("scenarios", [])}
    by_b = {s["name"]: s for s in b.get("scenarios", [])}
    rows = []
    for name in sorted(set(by_a) | set(by_b)):
        sa, sb = by_a.get(name), by_b.get(name)
        va, vb = (sa or {}).get("verdict", "absent"), (sb or {}).get("verdict", "absent")
        ta, tb = throughput_by_fault(sa or {}), throughput_by_fault(sb or {})
        rows.append({
            "scenario": name, "verdict_a": va, "verdict_b": vb, "verdict_changed": va != vb,
            "recovery_a": (sa or {}).get("recovery_s"), "recovery_b": (sb or {}).get("recovery_s"),
            "violations_b": [c["name"] for c in (sb or {}).get("checks", []) if not c["ok"]],
            "throughput_under_fault": {fault: (ta.get(fault), tb.get(fault)) for fault in sorted(set(ta) | set(tb))},
        })
    return rows
