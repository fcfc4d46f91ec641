"""``faultline doctor --target FILE``: a target definition checked field by field against what its
exporter really does, once, with no fault: the command starts, ready answers, records written to
the source arrive in the topic where ``[record]`` says and decode, the metrics named exist and
move, the log format reads the log, and the APIs it declares (pause and resume, export jobs)
answer. Each field is confirmed with the evidence, or wrong with what was seen instead: a wrong
field is found here in a minute, not as a failing scenario of the gate.

It runs one scenario (records written, the declared APIs asked, then the doctor's look while the
exporter still runs) through the same runner as every scenario, so what it checks is what a gate
would meet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.catalogue.scenario import Expect, Scenario, Step, Workload
from harness.infra.stack import Stack
from harness.judge.sink_readers import MESSAGE_SINKS
from harness.model.target import TargetDefinition
from harness.play.runner import ScenarioRunner
from harness.report.result import ScenarioResult
from harness.steps.doctor_look import DoctorLook
from harness.steps.exports import Export
from harness.steps.pauses import Pause, Resume

RECORDS = 200


@dataclass(frozen=True)
class Finding:
    """One field of the definition: confirmed (``ok``), wrong (False), or unconfirmed (None: what
    would show it did not happen in a fault-free run), with what was seen."""

    field: str
    ok: bool | None
    evidence: str

    @property
    def said(self) -> str:
        return {True: "confirmed", False: "wrong", None: "unconfirmed"}[self.ok]


def doctor_scenario(target: TargetDefinition) -> Scenario:
    """Records written; the declared APIs asked while they flow; the doctor's look afterwards."""
    steps = [Step("after", DoctorLook(), at=0.0)]
    if "pause" in target.apis:
        steps += [Step("during", Pause(grace_s=10.0), at=0.2), Step("during", Resume(), at=0.5)]
    if "exports" in target.apis:
        steps.append(Step("during", Export("doctor.jsonl"), at=0.7))
    return Scenario(name="doctor", description=f"target {target.name} checked against its definition",
                    workload=Workload(records=RECORDS), steps=tuple(steps),
                    # The look already waited for the records: a definition that cannot read them
                    # should not wait out a gate's drain again.
                    expect=Expect(recovered_within_s=10.0), during_s=2.0)


def examine(stack: Stack, target: TargetDefinition, work: Path, extra_env: dict[str, str] | None = None,
            ) -> tuple[list[Finding], ScenarioResult]:
    result = ScenarioRunner(stack, target, doctor_scenario(target), work, extra_env=extra_env).run()
    return findings(target, result), result


def findings(target: TargetDefinition, result: ScenarioResult) -> list[Finding]:
    error = result.error or ""
    log = result.log_excerpt[-3:]
    if "exited during start" in error or "cannot be started" in error:
        return [Finding("command", False, f"{error}; its log ends: {' | '.join(log) or '(empty)'}")]
    if "not ready after" in error:
        # The wait asks the ready path, then ready_sql: which of them never held is in the look's
        # absence; the path's own answer is named when the run got far enough to take one.
        field = "ready_path / ready_sql" if target.ready_sql else "ready_path"
        return [Finding("command", True, "started (it ran until the ready wait gave up)"),
                Finding(field, False, f"{error}; its log ends: {' | '.join(log) or '(empty)'}")]
    look = next((s.result for s in result.steps if s.description.startswith("the doctor's look") and s.result), None)
    if look is None:
        return [Finding("run", False, f"the doctor's run ended before its look: {error or result.verdict}")]
    found = [Finding("command", True, f"started ({target.command[0]} ...), ran through the run"),
             _ready(target, look["ready"]), _records(target, look, result), *_metrics(target, look["metrics"]),
             _log(look["log"])]
    if target.ready_sql:  # the start waited for it: the target started, so it answered true
        found.insert(2, Finding("ready_sql", True, f"answered true before the first write: {target.ready_sql[:100]}"))
    return found + _apis(target, result)


def _ready(target: TargetDefinition, ready: dict[str, Any]) -> Finding:
    ok = ready["status"] == 200 and target.ready_body in str(ready["body"])
    wanted = f"200{f' with {target.ready_body!r}' if target.ready_body else ''}"
    return Finding("ready_path", ok, f"GET {target.ready_path} answered {ready['status']} (wanted {wanted}): "
                                     f"{str(ready['body'])[:120]!r}")


def _records(target: TargetDefinition, look: dict[str, Any], result: ScenarioResult) -> Finding:
    written, arrived = look["written"], look["arrived"]
    sink = f"[record] / sinks.{next(role for role in MESSAGE_SINKS if role in target.sinks)}"
    where = f"id at {target.record.id!r}, payload at {target.record.payload!r}"
    samples = "; ".join(f"{s['message'][:160]!r} read as {s['as_record']}" for s in look["topic"][:2]) or "none"
    if arrived < written:
        return Finding(sink, False,
                       f"{arrived} of {written} records written to the source found in the sink ({where}); its "
                       f"first messages: {samples}")
    intact = result.ledger.count("delivered_intact") if result.ledger else 0
    if intact < written:
        return Finding("[record].payload", False, f"{written} records arrived, {intact} with the payload written "
                                                  f"({where}); first messages: {samples}")
    return Finding(sink, True, f"{arrived} of {written} records arrived, every payload intact ({where})")


def _metrics(target: TargetDefinition, metrics: dict[str, Any]) -> list[Finding]:
    if "error" in metrics:
        return [Finding("metrics_path", False, metrics["error"])] if target.metrics else []
    found = []
    scraped = ", ".join(metrics.get("names_scraped", [])[:12])
    for role, seen in ((r, metrics[r]) for r in target.metrics if r in metrics):
        if not seen["present"] and role != "delivered":
            # An error counter (or dead letters) may appear only once something is counted.
            found.append(Finding(f"[metrics].{role}", None, f"{seen['name']} is not in {target.metrics_path} "
                                                            f"(nothing to count in a fault-free run?); check the "
                                                            f"name against: {scraped}"))
        elif not seen["present"]:
            found.append(Finding(f"[metrics].{role}", False, f"{seen['name']} is not in {target.metrics_path}; it "
                                                             f"has: {scraped}"))
        elif role == "delivered" and seen["total"] <= 0:
            found.append(Finding(f"[metrics].{role}", False, f"{seen['name']} stayed at 0 while records arrived"))
        else:
            found.append(Finding(f"[metrics].{role}", True, f"{seen['name']} = {seen['total']:g}"))
    return found


def _log(log: dict[str, Any]) -> Finding:
    if log["lines"] and not log["records"]:
        return Finding("[log]", False, f"none of its {log['lines']} log lines read as [log] says; the first: "
                                       f"{' | '.join(log['first_lines'])[:200]!r}")
    return Finding("[log]", bool(log["lines"]), f"{log['records']} records read from {log['lines']} lines "
                                                f"(levels {', '.join(log['levels']) or 'none'})")


def _apis(target: TargetDefinition, result: ScenarioResult) -> list[Finding]:
    checks = {c.name: c for c in result.checks}
    found = []
    for api, names, field in (("pause", ("pause_within_grace", "resume"), "pause_path / resume_path"),
                              ("exports", ("export",), "exports_path")):
        if api not in target.apis:
            continue
        judged = [c for c in checks.values() if any(c.name == n or c.name.startswith(f"{n}:") for n in names)]
        bad = [c for c in judged if not c.ok]
        evidence = "; ".join(f"{c.name}: {c.detail[:160]}" for c in (bad or judged)) or "not judged"
        found.append(Finding(field, bool(judged) and not bad, evidence))
    return found
