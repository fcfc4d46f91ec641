"""Record-by-record checks, from the reconciliation of every acknowledged write against what the
sink and the dead-letter stream hold (harness.judge.reconcile) and the dead letters' reasons checked
against the records and the sink (harness.judge.letters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.checks.base import CheckKind, Evidence
from harness.checks.registry import check_kind
from harness.judge.reconcile import DEAD_LETTERED_DELIVERABLE, DEAD_LETTERED_WITHOUT_REASON, DELIVERED_CORRUPTED, LOST
from harness.report.journal import Check

if TYPE_CHECKING:
    from harness.model.expect import Expect


@check_kind
class NoLoss(CheckKind):
    name = "no_loss"
    expect_field = "no_loss"
    summary = "every acknowledged write is in the sink, or dead-lettered for a reason that holds"

    def judge(self, evidence: Evidence) -> list[Check]:
        outcome = evidence.outcome
        if outcome is None:
            return []
        lost = outcome.classes.get(LOST, [])
        hops = {outcome.lost_hops[i] for i in lost}
        misrouted = outcome.classes.get(DEAD_LETTERED_DELIVERABLE, [])
        parts = ([f"{len(lost)} lost; ids {sorted(lost)[:10]}; hops {sorted(hops)}"] if lost else []) + (
            [f"{len(misrouted)} dead-lettered though deliverable; ids {sorted(misrouted)[:10]}; e.g. "
             f"{outcome.misrouted[min(misrouted)]}"] if misrouted else [])
        return [Check(self.name, not parts, "; ".join(parts) or "every acknowledged write accounted for")]


@check_kind
class NoCorruption(CheckKind):
    name = "no_corruption"
    expect_field = "no_corruption"
    summary = "every delivered record byte for byte as written"

    def judge(self, evidence: Evidence) -> list[Check]:
        if evidence.outcome is None:
            return []
        bad = evidence.outcome.classes.get(DELIVERED_CORRUPTED, [])
        return [Check(self.name, not bad, f"{len(bad)} corrupted; ids {sorted(bad)[:10]}"
                      if bad else "every delivered record byte for byte")]


@check_kind
class DeadLettersHaveReasons(CheckKind):
    """A dead letter carries a reason, and one its target declares ([dead_letter_reasons]): a
    reason nobody declared is no reason the harness can hold the exporter to."""

    name = "dead_letters_have_reasons"
    expect_field = "dead_letters_have_reasons"
    needs = frozenset({"dead_letters"})
    summary = "each dead letter has a reason the target declares; how many were taken on trust is said"

    def judge(self, evidence: Evidence) -> list[Check]:
        if evidence.outcome is None:
            return []
        missing = evidence.outcome.classes.get(DEAD_LETTERED_WITHOUT_REASON, [])
        undeclared = evidence.letters.undeclared
        contradicted = evidence.letters.contradicted
        parts = ([f"{len(missing)} without reason: {sorted(missing)[:10]}"] if missing else []) + (
            [f"{sum(undeclared.values())} with a reason the target does not declare: "
             + ", ".join(f"{reason!r} x{n}" for reason, n in sorted(undeclared.items())[:5])] if undeclared else []) + (
            [f"{len(contradicted)} contradicted by the sink: ids {sorted(contradicted)[:10]}; e.g. "
             + contradicted[min(contradicted)]] if contradicted else [])
        letters = evidence.outcome.count("dead_lettered")
        trusted = evidence.letters.trusted
        held = (f"{letters} dead letters, each with a declared reason ({evidence.letters.verified} checked, "
                f"{trusted} taken on trust)")
        return [Check(self.name, not parts, "; ".join(parts) or held)]


@check_kind
class DeadLettered(CheckKind):
    name = "dead_lettered"
    expect_field = "dead_lettered_at_least"
    needs = frozenset({"dead_letters"})
    summary = "at least Expect.dead_lettered_at_least records dead-lettered (bad input must not be delivered)"

    def enabled(self, expect: Expect) -> bool:
        return expect.dead_lettered_at_least > 0  # 0: no dead letter is required

    def judge(self, evidence: Evidence) -> list[Check]:
        if evidence.outcome is None or evidence.interrupted:
            return []  # interrupted: the faults that provoke dead letters did not run their course
        n = evidence.outcome.count("dead_lettered")
        least = evidence.expect.dead_lettered_at_least
        return [Check(self.name, n >= least, f"{n} dead-lettered (expected at least {least})")]


@check_kind
class NoUnexpected(CheckKind):
    name = "no_unexpected"
    summary = "nothing in the sinks that was not written"

    def judge(self, evidence: Evidence) -> list[Check]:
        outcome = evidence.outcome
        if outcome is None:
            return []
        if outcome.unexpected:
            return [Check(self.name, False, f"{len(outcome.unexpected)} unexpected: {outcome.unexpected[:5]}")]
        return [Check(self.name, True, "nothing in the sinks that was not written")]


@check_kind
class KeyOrder(CheckKind):
    name = "key_order"
    expect_field = "key_order"
    summary = "records of one key reach each partition or file in source order"

    def judge(self, evidence: Evidence) -> list[Check]:
        outcome = evidence.outcome
        if outcome is None:
            return []
        if not outcome.inversion_count:
            return [Check(self.name, True, "records of each key reached every partition or file in source order")]
        shown = "; ".join(x.describe() for x in outcome.inversions[:3])
        return [Check(self.name, False, f"{outcome.inversion_count} record(s) out of source order: {shown}")]


@check_kind
class Duplicates(CheckKind):
    name = "duplicates"
    expect_field = "max_duplicates"
    summary = "at most Expect.max_duplicates redeliveries, attributed to the fault window they follow"

    def judge(self, evidence: Evidence) -> list[Check]:
        bound = evidence.expect.max_duplicates
        if evidence.outcome is None or bound is None:
            return []
        where = ", ".join(f"{n} {label}" for label, n in evidence.duplicates_by_window.items()) or "none"
        return [Check(self.name, evidence.outcome.duplicates <= bound,
                      f"{evidence.outcome.duplicates} redelivered (at most {bound}): {where}")]
