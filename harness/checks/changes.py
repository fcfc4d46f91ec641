"""Checks of a change workload, one per anomaly family of the judge of histories
(harness.judge.histories). Each is silent when no change was written: a scenario of inserts
only has nothing here to judge, and says so by having no such check in its report."""

from __future__ import annotations

from harness.checks.base import CheckKind, Evidence
from harness.checks.registry import check_kind
from harness.judge.histories import (
    BEFORE_IMAGE_WRONG,
    CHANGE_CORRUPTED,
    CHANGE_LOST,
    CHANGE_OUT_OF_ORDER,
    CHANGE_UNEXPECTED,
    DELETE_LOST,
    DIVERGED,
    KEY_CHANGE_PARTIAL,
    RESURRECTED,
    TRANSACTION_PARTIAL,
    TRANSACTION_UNMARKED,
    HistoryJudgement,
)
from harness.report.journal import Check


class _ChangeCheck(CheckKind):
    """A check over some anomaly classes: failed with their counts and the first rows' histories."""

    classes: tuple[str, ...] = ()

    def held(self, judged: HistoryJudgement) -> str:
        raise NotImplementedError

    def judge(self, evidence: Evidence) -> list[Check]:
        judged = evidence.changes
        if judged is None:
            return []
        found = [(cls, judged.count(cls)) for cls in self.classes if judged.count(cls)]
        if not found:
            return [Check(self.name, True, self.held(judged))]
        parts = [f"{n} {cls}" + (f" ({judged.described(cls)})" if judged.samples.get(cls) else "")
                 for cls, n in found]
        if CHANGE_UNEXPECTED in dict(found) and judged.unexpected_samples:
            parts.append("e.g. " + "; ".join(judged.unexpected_samples[:2]))
        return [Check(self.name, False, "; ".join(parts))]


@check_kind
class ChangesDelivered(_ChangeCheck):
    name = "changes_delivered"
    expect_field = "changes_delivered"
    summary = "every committed version and delete reached the sink byte for byte, and nothing else did"
    classes = (CHANGE_LOST, CHANGE_CORRUPTED, CHANGE_UNEXPECTED)

    def held(self, judged: HistoryJudgement) -> str:
        owed = "every committed version" if judged.delivers == "every_version" else "each row's latest state"
        return (f"{judged.committed} committed changes on {judged.rows} rows: {owed} delivered intact "
                f"({judged.duplicates} redelivered, {judged.uncertain} of unknown outcome)")


@check_kind
class ChangeOrder(_ChangeCheck):
    name = "change_order"
    expect_field = "change_order"
    summary = "versions of one row reach each partition or file in commit order"
    classes = (CHANGE_OUT_OF_ORDER,)

    def held(self, judged: HistoryJudgement) -> str:
        return "versions of every row reached the sink in commit order"


@check_kind
class DeletesHold(_ChangeCheck):
    name = "deletes_hold"
    expect_field = "deletes_hold"
    summary = "a row deleted at the source ends deleted downstream and is never brought back"
    classes = (DELETE_LOST, RESURRECTED)

    def held(self, judged: HistoryJudgement) -> str:
        return f"{judged.deletes} deletes: every deleted row ends deleted downstream"


@check_kind
class KeyChangesWhole(_ChangeCheck):
    name = "key_changes_whole"
    expect_field = "key_changes_whole"
    summary = "a primary-key change arrives whole (old key deleted and new key created) or not at all"
    classes = (KEY_CHANGE_PARTIAL,)

    def held(self, judged: HistoryJudgement) -> str:
        return f"{judged.key_changes} primary-key changes, each whole"


@check_kind
class TransactionsWhole(_ChangeCheck):
    name = "transactions_whole"
    expect_field = "transactions_whole"
    summary = "the changes of one transaction arrive all of them or none (and under one mark of their own, " \
              "for a target that marks transactions)"
    classes = (TRANSACTION_PARTIAL, TRANSACTION_UNMARKED)

    def held(self, judged: HistoryJudgement) -> str:
        if judged.delivers != "every_version":
            return "not judged: the target delivers only each row's latest state"
        marked = ", each under one mark of its own" if judged.marked else ""
        return f"{judged.transactions} multi-change transactions, each whole{marked}"


@check_kind
class Converges(_ChangeCheck):
    name = "converges"
    expect_field = "converges"
    summary = "the sink folded per row in stream order equals the source's final state"
    classes = (DIVERGED,)

    def held(self, judged: HistoryJudgement) -> str:
        return f"every row's final state downstream is the source's ({judged.rows} rows)"


@check_kind
class BeforeImages(_ChangeCheck):
    """What the replica identity promises a CDC connector's consumers: with FULL an update's and a
    delete's before image is the row's previous version; with DEFAULT there is no old payload.
    Judged where the target's [record] says where before images sit (else silent)."""

    name = "before_images"
    expect_field = "before_images"
    summary = "each update's and delete's before image is the row's previous version (replica identity FULL) or " \
              "holds no old payload (DEFAULT)"
    classes = (BEFORE_IMAGE_WRONG,)

    def judge(self, evidence: Evidence) -> list[Check]:
        if evidence.changes is None or evidence.changes.before_images is None:
            return []
        return super().judge(evidence)

    def held(self, judged: HistoryJudgement) -> str:
        what = "the row's previous version" if judged.before_images == "full" else "no old payload"
        return f"{judged.before_images_judged} before images, each {what}"
