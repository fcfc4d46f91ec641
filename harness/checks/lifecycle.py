"""Checks of the exporter as a process: healthy and flowing before any fault, alive through it,
drained within its bound after healing, healthy after, mid-run checkpoints, and no leak."""

from __future__ import annotations

from harness.checks.base import CheckKind, Evidence
from harness.checks.registry import check_kind
from harness.report.journal import Check


@check_kind
class SteadyStateBefore(CheckKind):
    name = "steady_state_before"
    summary = "healthy, and the first records delivered or dead-lettered, before any fault"

    def judge(self, evidence: Evidence) -> list[Check]:
        steady = evidence.steady
        if steady.healthy_before is None:
            return []  # the before phase never ran (interrupted first): nothing to claim
        ok = bool(steady.healthy_before and steady.flowing_before)
        return [Check(self.name, ok, f"exporter healthy={steady.healthy_before}; first {steady.records_before} "
                                     f"records delivered or dead-lettered={steady.flowing_before}")]


@check_kind
class ProcessAlive(CheckKind):
    name = "process_alive"
    expect_field = "process_alive"
    summary = "the exporter ran throughout: started once, plus once per planned kill"

    def judge(self, evidence: Evidence) -> list[Check]:
        process = evidence.process
        if process is None:
            return []
        alive = not process.died and process.starts == 1 + process.planned_kills
        how = f"it exited by itself with code {process.exit_code}" if process.died else "still running"
        return [Check(self.name, alive, f"exporter started {process.starts} time(s) for {process.planned_kills} "
                                        f"planned kill(s); {how}")]


@check_kind
class RecoveredWithin(CheckKind):
    name = "recovered_within"
    expect_field = "recovered_within_s"
    summary = "every acknowledged write settled within Expect.recovered_within_s of healing"

    def judge(self, evidence: Evidence) -> list[Check]:
        recovery = evidence.recovery
        if recovery is None:
            return []
        bound = evidence.expect.recovered_within_s
        if recovery.seconds is None:
            return [Check(self.name, False, recovery.timed_out or "never drained")]
        return [Check(self.name, recovery.seconds <= bound,
                      f"drained {recovery.seconds:.1f}s after healing (bound {bound}s)")]


@check_kind
class SteadyStateAfter(CheckKind):
    name = "steady_state_after"
    summary = "healthy again after healing"

    def judge(self, evidence: Evidence) -> list[Check]:
        healthy = evidence.steady.healthy_after
        if healthy is None:
            return []
        # Said both ways: a failure once read "exporter healthy after healing" (against Debezium
        # Server after a switchover), which a reader took for the opposite.
        return [Check(self.name, healthy, "exporter healthy after healing" if healthy else
                      "exporter not healthy after healing: its ready path did not answer 200 (or it had exited)")]


@check_kind
class Checkpoints(CheckKind):
    name = "checkpoints"
    summary = "no corrupted or unexpected record at a mid-run checkpoint"

    def judge(self, evidence: Evidence) -> list[Check]:
        points = evidence.checkpoints
        if not points:
            return []
        bad = [p for p in points if p.corrupted or p.unexpected]
        lagging = max(p.missing for p in points)
        return [Check(self.name, not bad, f"{len(points)} checkpoint(s); most records not yet settled at one: "
                                          f"{lagging}" + (f"; corrupted or unexpected records at t="
                                                          f"{[p.at for p in bad]}" if bad else ""))]


@check_kind
class NoResourceLeak(CheckKind):
    name = "no_resource_leak"
    expect_field = "no_resource_leak"
    summary = "no fitted growth of RSS, files, threads or connections past its threshold"

    def judge(self, evidence: Evidence) -> list[Check]:
        found = evidence.resources
        if found is None or not found.trends:
            return []  # not a pass by default: the report says why nothing was judged
        return [Check(self.name, not found.leaks, "; ".join(t.describe() for t in (found.leaks or found.trends)))]
