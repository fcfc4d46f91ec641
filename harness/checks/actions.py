"""Checks of what the exporter answered to an operator's or a client's action: a resume, an
export job, a burst of them. The step measures (what was asked, what came back, which ways it
fell short); the check that owns the answer's name makes the verdict."""

from __future__ import annotations

from harness.checks.base import CheckKind, Evidence
from harness.checks.registry import check_kind
from harness.report.journal import ActionAnswer, Check


class _Answered(CheckKind):


    def owns(self, answer: ActionAnswer) -> bool:
        return answer.check == self.name or answer.check.startswith(f"{self.name}:")

    def judge(self, evidence: Evidence) -> list[Check]:
        return [Check(a.check, not a.failures, a.detail + (f" (expected {a.expected}; {'; '.join(a.failures)})"
                                                           if a.failures else ""))
                for a in evidence.observed.answers if self.owns(a)]


@check_kind
class ResumeAnswered(_Answered):
    name = "resume"
    summary = "a resume is accepted (and a connector RUNNING again within 10 s)"


@check_kind
class ExportJob(_Answered):
    name = "export"
    summary = "an export job ends as expected: refused with a reason, failed leaving nothing, or complete and intact"


@check_kind
class ExportAdmission(_Answered):
    name = "export_admission"
    summary = "a burst of export jobs is admitted per user quota, the rest refused with a reason"


@check_kind
class ExportsComplete(_Answered):
    name = "exports_complete"
    summary = "every admitted export job of a burst completes with every row intact"
