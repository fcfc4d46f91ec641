"""report.json read back: validated against the types of ``harness.report.result``, refused
with the field that is wrong (a file from another version, a hand-edited one, a field the types
do not name), and audited for what the types cannot say (a "pass" with a failed check, a stack
the run did not have) so that ``compare`` and ``report`` never trust a report that contradicts
itself."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from harness.errors import HarnessError
from harness.inputs import JSON_LIMIT, load_json, read_text, unknown_field
from harness.report.result import READABLE, REPORT_TYPES, RunReport, ScenarioResult, Verdict, ran_beside


class ReportUnreadable(HarnessError):
    """A report.json that is missing, not JSON, or not of this schema (exit 2)."""


def read_report(path: Path) -> RunReport:
    """A report.json read back into the types; anything else is refused, naming the field. Read
    with limits (a regular file, 64 MiB), strict numbers (no NaN: JSON has none), an exact schema
    number (``true`` and ``1.0`` are not 1), and audited: a report that contradicts itself (a
    "pass" with a failed check, a negative recovery) is not one ``compare`` may trust."""
    text = read_text(path, "report", ReportUnreadable, JSON_LIMIT) if path.exists() or path.is_symlink() else None
    if text is None:
        raise ReportUnreadable(f"{path.parent} holds no report.json; point at a directory a run wrote")
    raw = load_json(text, path, "report", ReportUnreadable)
    found = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
    if not isinstance(raw, dict) or type(found) is not int or found not in READABLE:
        raise ReportUnreadable(f"{path}: schema {found!r} is not one this version reads (schemas "
                               f"{', '.join(map(str, READABLE))})")
    try:
        # Strict, from JSON: "no" is not false and 1.5 is not a count (JSON arrays are tuples, strings enums).
        report = REPORT_TYPES.validate_json(text, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReportUnreadable(f"{path}: field {where}: {first['msg']} ({exc.error_count()} problem(s) in all)") \
            from exc
    stray = unknown_field(raw, REPORT_TYPES.dump_python(report, mode="json"))
    problems = [f"{stray}: not a field of a report"] if stray is not None else audit(report)
    if problems:
        raise ReportUnreadable(f"{path}: field {problems[0]} ({len(problems)} problem(s) in all)")
    return report


REPEAT_MAX = 1000  # faultline run --repeat's bound


def audit(report: RunReport) -> list[str]:
    """What the types cannot say: numbers in their range, and verdicts that agree with their checks."""
    problems = []
    if not 1 <= report.repeat <= REPEAT_MAX:
        problems.append(f"repeat: {report.repeat} is outside 1..{REPEAT_MAX}")
    if report.duration_s < 0:
        problems.append(f"duration_s: {report.duration_s} is negative")
    for n, result in enumerate(report.scenarios):
        problems += [f"scenarios.{n}.{p}" for p in _audit_scenario(result)]
    problems += _audit_stacks(report)
    judged = [r.verdict for r in report.scenarios]
    if report.explore is None and report.verdict is not _verdict_of(judged) \
            and not (report.verdict is Verdict.FAIL and not report.repeat_consistent):
        problems.append(f"verdict: {report.verdict}, yet its scenarios' verdicts are "
                        f"{', '.join(sorted(set(judged))) or 'none (nothing judged)'}")
    return problems


def _audit_stacks(report: RunReport) -> list[str]:
    """Every scenario on one of the run's stacks, and ``beside`` what their spans say (a merge of
    explore shards keeps each shard's: their clocks and stack numbers are their own)."""
    if report.jobs < 1:
        return [f"jobs: {report.jobs} is not a number of stacks"]
    problems = [f"scenarios.{n}.stack: {r.stack}, yet the run played on {report.jobs}"
                for n, r in enumerate(report.scenarios) if not 1 <= r.stack <= report.jobs]
    merged = report.explore is not None and report.explore.merged_from
    if not merged and report.beside != ran_beside(report.scenarios):
        problems.append(f"beside: {report.beside}, yet its scenarios' stacks and times say "
                        f"{ran_beside(report.scenarios)}")
    return problems


def _verdict_of(judged: list[Verdict]) -> Verdict:
    """The run's verdict from its scenarios' (harness.play.gate.exit_code_of): nothing judged is no pass."""
    if Verdict.ERROR in judged or all(v is Verdict.SKIPPED for v in judged):
        return Verdict.ERROR
    return Verdict.FAIL if Verdict.FAIL in judged else Verdict.PASS


def _audit_scenario(result: ScenarioResult) -> list[str]:
    times = (("duration_s", result.duration_s), ("recovery_s", result.recovery_s), ("started_s", result.started_s))
    problems = [f"{name}: {value} is negative" for name, value in times if value is not None and value < 0]
    if result.changes is not None:
        problems += [f"changes.counts.{name}: {value} is negative" for name, value in result.changes.counts.items()
                     if value < 0]
    if result.ledger is not None:
        ledger = result.ledger
        problems += [f"ledger.{name}: {value} is negative" for name, value in (
            *ledger.counts.items(), ("duplicates", ledger.duplicates), ("order_inversions", ledger.order_inversions),
            ("unexpected", ledger.unexpected)) if value < 0]
    failed = [c.name for c in result.violations]
    if result.verdict is Verdict.PASS and (failed or result.error):
        problems.append(f"verdict: pass, yet {'check ' + failed[0] + ' failed' if failed else 'it has an error'}")
    if result.verdict is Verdict.FAIL and not failed:
        problems.append("verdict: fail, yet no check failed")
    if result.verdict is Verdict.ERROR and not result.error:
        problems.append("verdict: error, yet no error is given")
    return problems
