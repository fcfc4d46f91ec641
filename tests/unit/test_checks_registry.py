"""The check registry: every Expect field is read by exactly one registered check, every check is
seen failing on evidence that should fail it (and holding on evidence that should not), and a
team's own check with its own Expect field gets what a built-in gets."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest

from harness import checks
from harness.checks import CheckKind, CheckKindError, Evidence, check_kind, judge_all, registered_checks, verify
from harness.checks.base import MetricsEvidence, RecoveryEvidence, ResourceEvidence
from harness.checks.pauses import delivered_between
from harness.judge.changelog import DELETE, INSERT, MOVE_IN, MOVE_OUT, UPDATE, ChangeEvents, ChangeLog, version_payload
from harness.judge.histories import HistoryJudgement, judge_histories
from harness.judge.ledger import Ledger, content_hash
from harness.judge.letters import LetterCheck
from harness.judge.reconcile import reconcile
from harness.judge.sinks import DeadLetterRecord, SinkRecord
from harness.report.journal import (
    ActionAnswer,
    Check,
    FaultReach,
    FlowMark,
    Observations,
    PauseObservation,
    ProcessEvidence,
    SourceStatements,
)
from harness.report.resources import Trend
from harness.report.result import CheckpointPoint, MetricsSnapshot, Resources, SteadyState
from harness.scenario import Expect

EVERY = frozenset({"metrics", "buffer", "dead_letters"})


def _ledger(ids: list[int], key: str = "k") -> Ledger:
    ledger = Ledger()
    for record_id in ids:
        ledger.add(record_id, content_hash(str(record_id).encode()), "ok", key)
    return ledger


def _sink(ids: list[int], payload: Callable[[int], str] = str, stream: str = "kafka:t/0") -> list[SinkRecord]:
    return [SinkRecord(i, payload(i), b"", "", None, stream, n) for n, i in enumerate(ids)]


def _letter(record_id: int, reason: str) -> DeadLetterRecord:
    return DeadLetterRecord(str(record_id), reason, "", "sink.kafka", str(record_id).encode())


def _changes(order: list[int] | None = None, moved: bool = True,
             before_images: Literal["full", "none"] | None = None) -> HistoryJudgement:
    """A row inserted, updated twice and deleted, another moved to a new key in a transaction
    with a third's insert; delivered in ``order`` (change numbers; default all, in order)."""
    log = ChangeLog()
    payloads: dict[int, bytes] = {}

    def txn(*changes: tuple[int, int]) -> list[int]:
        t, first, numbers = log.begin(), log.next_number(), []
        for row, kind in changes:
            n = log.next_number()
            payload = None if kind in (DELETE, MOVE_OUT) else version_payload(n, b"x")
            log.add(row, kind, t, payload)
            payloads[n] = payload or b""
            numbers.append(n)
        log.settle(first, "ok")
        return numbers

    txn((1, INSERT)), txn((1, UPDATE)), txn((1, UPDATE)), txn((2, INSERT)), txn((1, DELETE))
    out, into, _third = txn((2, MOVE_OUT), (3, MOVE_IN), (4, INSERT))
    if moved:
        log.moves[out] = into
    events = ChangeEvents()
    for n in order if order is not None else range(len(log)):
        if log.kinds[n] in (DELETE, MOVE_OUT):
            events.add_delete(log.rows[n], "kafka:t/0")
        else:
            events.add_version(log.rows[n], payloads[n], "kafka:t/0", log)
    return judge_histories(log, events, before_images=before_images)


def _evidence(**fields: object) -> Evidence:
    expect = fields.pop("expect", Expect())
    return Evidence(expect=expect, capabilities=EVERY, target_name="t", **fields)  # type: ignore[arg-type]


def _outcome(ids: list[int], sink: list[SinkRecord], letters: list[DeadLetterRecord] | None = None,
             key: str = "k"):  # noqa: ANN202
    return reconcile(_ledger(ids, key), sink, letters or [])


READ = "SELECT id, key, payload FROM t_source WHERE id > $1"
POLL = "SELECT coalesce(max(id), $1) FROM t_source"


def _pause(drained: bool | None = True, state_at_end: str = "paused", elapsed: float = 0.2,
           ends: tuple[int, int] = (2, 2), starts: tuple[int, int] = (1, 1),
           source: tuple[SourceStatements | None, SourceStatements | None] = (None, None)) -> PauseObservation:
    return PauseObservation(1.0, 2.5, 200, "paused", elapsed, True, drained, "pause answered",
                            at_ack=FlowMark(100.0, {"kafka:t/0": ends[0]}, starts[0], source[0]), pending_at_ack=1,
                            at_end=FlowMark(104.0, {"kafka:t/0": ends[1]}, starts[1], source[1]),
                            state_at_end=state_at_end, ended_by="resume")


def _statements(read: int, poll: int) -> SourceStatements:
    return SourceStatements({READ: read, POLL: poll})


def _leak() -> ResourceEvidence:
    trend = Trend("rss_mb", 1, 30, 60.0, 50.0, 90.0, 40.0, 0.8, True)
    return ResourceEvidence(Resources(trends=[trend]), [trend], [trend])


def _answer(name: str) -> Observations:
    return Observations(answers=[ActionAnswer(name, "200", ("answered 500",), f"{name} answered 500")])


# For every registered check: evidence it must fail on, and evidence it must hold on.
FAILING: dict[str, Callable[[], Evidence]] = {
    "steady_state_before": lambda: _evidence(steady=SteadyState(healthy_before=True, flowing_before=False)),
    "process_alive": lambda: _evidence(process=ProcessEvidence(2, 0, False, None)),
    "recovered_within": lambda: _evidence(recovery=RecoveryEvidence(61.0)),
    "steady_state_after": lambda: _evidence(steady=SteadyState(healthy_after=False)),
    "checkpoints": lambda: _evidence(checkpoints=[CheckpointPoint(1.0, 5, True, 0.1, 0, [], [], 0, 1, 0, False)]),
    "no_resource_leak": lambda: _evidence(expect=Expect(no_resource_leak=True), resources=_leak()),
    "no_loss": lambda: _evidence(outcome=_outcome([1, 2], _sink([1]))),
    "no_corruption": lambda: _evidence(outcome=_outcome([1], _sink([1], payload=lambda i: "other"))),
    "dead_letters_have_reasons": lambda: _evidence(outcome=_outcome([1], [], [_letter(1, "why not")]),
                                                   letters=LetterCheck(undeclared={"why not": 1})),
    "dead_lettered": lambda: _evidence(expect=Expect(dead_lettered_at_least=1), outcome=_outcome([1], _sink([1]))),
    "no_unexpected": lambda: _evidence(outcome=_outcome([1], _sink([1, 99]))),
    "key_order": lambda: _evidence(outcome=_outcome([1, 2, 3], _sink([1, 3, 2]))),
    "changes_delivered": lambda: _evidence(changes=_changes([0, 2, 3, 4, 5, 6, 7])),  # change 1 never came
    "change_order": lambda: _evidence(changes=_changes([0, 2, 1, 3, 4, 5, 6, 7])),
    "deletes_hold": lambda: _evidence(changes=_changes([0, 1, 2, 3, 5, 6, 7])),  # row 1's delete never came
    "key_changes_whole": lambda: _evidence(changes=_changes([0, 1, 2, 3, 4, 6, 7])),  # the old key lives on
    "transactions_whole": lambda: _evidence(changes=_changes([0, 1, 2, 3, 4, 5, 6])),
    "converges": lambda: _evidence(changes=_changes([0, 1, 2, 3, 4, 5, 6])),  # row 4 never came
    # Replica identity FULL promised, yet the events carry no before image.
    "before_images": lambda: _evidence(changes=_changes(before_images="full")),
    "duplicates": lambda: _evidence(expect=Expect(max_duplicates=0), outcome=_outcome([1], _sink([1, 1]))),
    "metrics_agree": lambda: _evidence(metrics=MetricsEvidence(MetricsSnapshot(5, 0, 1, 0, 1), None),
                                       sink=_sink([1])),
    "errors_surfaced": lambda: _evidence(expect=Expect(errors_surfaced=True),
                                         metrics=MetricsEvidence(MetricsSnapshot(1, 0, 1, 0, 1), None, 0.0, 3)),
    "pause_within_grace": lambda: _evidence(observed=Observations(pauses=[_pause(elapsed=2.6)])),
    "pause_honoured": lambda: _evidence(observed=Observations(pauses=[_pause()]),
                                        appended_between=lambda lo, hi: [7, 8]),
    "resume": lambda: _evidence(observed=_answer("resume")),
    "protocol_faults_met": lambda: _evidence(observed=Observations(reaches=[FaultReach("redis GET", "redis", 4, 0,
                                                                                       True)])),
    "export": lambda: _evidence(observed=_answer("export:x.jsonl")),
    "export_admission": lambda: _evidence(observed=_answer("export_admission")),
    "exports_complete": lambda: _evidence(observed=_answer("exports_complete")),
}
HOLDING: dict[str, Callable[[], Evidence]] = {
    "steady_state_before": lambda: _evidence(steady=SteadyState(healthy_before=True, flowing_before=True)),
    "process_alive": lambda: _evidence(process=ProcessEvidence(2, 1, False, None)),
    "recovered_within": lambda: _evidence(recovery=RecoveryEvidence(59.0)),
    "steady_state_after": lambda: _evidence(steady=SteadyState(healthy_after=True)),
    "checkpoints": lambda: _evidence(checkpoints=[CheckpointPoint(1.0, 5, True, 0.1, 3, [], [], 0, 0, 0, False)]),
    "no_resource_leak": lambda: _evidence(expect=Expect(no_resource_leak=True), resources=ResourceEvidence(
        Resources(), [Trend("rss_mb", 1, 30, 60.0, 50.0, 51.0, 1.0, 0.02, False)], [])),
    "no_loss": lambda: _evidence(outcome=_outcome([1, 2], _sink([1, 2]))),
    "no_corruption": lambda: _evidence(outcome=_outcome([1], _sink([1]))),
    "dead_letters_have_reasons": lambda: _evidence(outcome=_outcome([1], [], [_letter(1, "too_large")]),
                                                   letters=LetterCheck(verified=1)),
    "dead_lettered": lambda: _evidence(expect=Expect(dead_lettered_at_least=1),
                                       outcome=_outcome([1], [], [_letter(1, "too_large")])),
    "no_unexpected": lambda: _evidence(outcome=_outcome([1], _sink([1]))),
    "key_order": lambda: _evidence(outcome=_outcome([1, 2, 3], _sink([1, 2, 3]))),
    "changes_delivered": lambda: _evidence(changes=_changes()),
    "change_order": lambda: _evidence(changes=_changes()),
    "deletes_hold": lambda: _evidence(changes=_changes()),
    "key_changes_whole": lambda: _evidence(changes=_changes()),
    "transactions_whole": lambda: _evidence(changes=_changes()),
    "converges": lambda: _evidence(changes=_changes([0, 1, 2, 3, 4, 5, 6, 7, 7])),  # a redelivery changes nothing
    "before_images": lambda: _evidence(changes=_changes(before_images="none")),
    "duplicates": lambda: _evidence(expect=Expect(max_duplicates=1), outcome=_outcome([1], _sink([1, 1]))),
    "metrics_agree": lambda: _evidence(metrics=MetricsEvidence(MetricsSnapshot(1, 0, 1, 0, 1), None),
                                       sink=_sink([1])),
    "errors_surfaced": lambda: _evidence(expect=Expect(errors_surfaced=True),
                                         metrics=MetricsEvidence(MetricsSnapshot(1, 0, 1, 0, 1), None, 2.0, 3)),
    "pause_within_grace": lambda: _evidence(observed=Observations(pauses=[_pause(elapsed=2.4)])),
    "pause_honoured": lambda: _evidence(observed=Observations(pauses=[_pause()]), appended_between=lambda lo, hi: []),
    "resume": lambda: _evidence(observed=Observations(answers=[ActionAnswer("resume", "200", (), "answered 200")])),
    "protocol_faults_met": lambda: _evidence(observed=Observations(reaches=[
        FaultReach("redis GET", "redis", 4, 2, True), FaultReach("redis XADD", "redis", 0, 0, False)])),
    "export": lambda: _evidence(observed=Observations(answers=[ActionAnswer("export:x", "completed", (), "ok")])),
    "export_admission": lambda: _evidence(observed=Observations(answers=[ActionAnswer("export_admission", "", (),
                                                                                      "ok")])),
    "exports_complete": lambda: _evidence(observed=Observations(answers=[ActionAnswer("exports_complete", "", (),
                                                                                      "ok")])),
}


def _judged(name: str, evidence: Evidence) -> list[Check]:
    check = registered_checks()[name]
    assert check.enabled(evidence.expect), f"{name} is off for this evidence's Expect"
    return check.judge(evidence)


def test_every_builtin_check_has_a_failing_and_a_holding_case() -> None:
    builtin = {n for n, c in registered_checks().items() if type(c).__module__.startswith("harness.checks.")}
    assert builtin == set(FAILING) == set(HOLDING)


@pytest.mark.parametrize("name", sorted(FAILING))
def test_each_check_fails_on_evidence_that_breaks_it(name: str) -> None:
    found = _judged(name, FAILING[name]())
    assert found and all(c.applicable for c in found)
    assert any(not c.ok for c in found), [c.detail for c in found]


@pytest.mark.parametrize("name", sorted(HOLDING))
def test_each_check_holds_on_evidence_that_keeps_it(name: str) -> None:
    found = _judged(name, HOLDING[name]())
    assert found and all(c.ok for c in found), [c.detail for c in found]


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Expect) if f.name != "custom"])
def test_each_expect_field_turns_its_check_on_and_off(field: str) -> None:
    (name, check), = [(n, c) for n, c in registered_checks().items() if c.expect_field == field]
    failing = FAILING[name]()
    off = {bool: False, int: 0}.get(type(getattr(failing.expect, field)))
    off_value = None if field == "max_duplicates" else off
    if field == "recovered_within_s":  # a bound, always on: the field sets where it fails
        assert not check.judge(_evidence(expect=Expect(recovered_within_s=100.0),
                                         recovery=RecoveryEvidence(61.0)))[0].detail.startswith("never")
        assert check.judge(_evidence(expect=Expect(recovered_within_s=100.0), recovery=RecoveryEvidence(61.0)))[0].ok
        return
    assert any(not c.ok for c in judge_all(failing) if c.name.split(":")[0] == name)
    failing.expect = dataclasses.replace(failing.expect, **{field: off_value})
    assert not any(c.name.split(":")[0] == name for c in judge_all(failing)), f"Expect.{field} off still judges"


def test_a_field_no_check_reads_is_refused_and_so_is_a_field_read_twice() -> None:
    every = registered_checks()
    without = {n: c for n, c in every.items() if c.expect_field != "pause_honoured"}
    with pytest.raises(CheckKindError, match="Expect.pause_honoured is read by no registered check"):
        verify(without)
    twice = dict(every, copy=type("Copy", (type(every["no_loss"]),), {"name": "copy"})())
    with pytest.raises(CheckKindError, match="Expect.no_loss is read by 2 checks"):
        verify(twice)
    verify()  # the built-ins as shipped


def test_a_check_the_target_cannot_offer_is_not_applicable_never_held() -> None:
    evidence = FAILING["metrics_agree"]()
    evidence.capabilities = frozenset({"buffer"})
    found = [c for c in judge_all(evidence) if c.name == "metrics_agree"]
    assert len(found) == 1 and not found[0].applicable and "has no metrics" in found[0].detail


def test_pause_honoured_allows_what_was_in_flight_only_when_the_exporter_says_it_did_not_drain() -> None:
    sink = _sink([1, 2, 3, 4])  # offsets 2 and 3 landed while paused
    drained = _evidence(observed=Observations(pauses=[_pause(drained=True, ends=(2, 4))]), sink=sink,
                        appended_between=lambda lo, hi: [])
    (check,) = _judged("pause_honoured", drained)
    assert not check.ok and "2 records delivered to the sink while paused (ids [3, 4])" in check.detail
    not_drained = _evidence(observed=Observations(pauses=[_pause(drained=False, ends=(2, 4))]), sink=sink,
                            appended_between=lambda lo, hi: [], pause_in_flight_max=1)
    (check,) = _judged("pause_honoured", not_drained)
    assert check.ok, check.detail  # 1 taken from the buffer + 1 declared in flight


def test_pause_honoured_fails_an_exporter_that_resumes_by_itself() -> None:
    (check,) = _judged("pause_honoured", _evidence(observed=Observations(pauses=[_pause(state_at_end="running")]),
                                                   appended_between=lambda lo, hi: []))
    assert not check.ok and "resumed by itself" in check.detail


def test_pause_honoured_is_not_judged_across_a_restart() -> None:
    (check,) = _judged("pause_honoured", _evidence(observed=Observations(pauses=[_pause(starts=(1, 2))]),
                                                   appended_between=lambda lo, hi: [1]))
    assert check.ok and not check.applicable and "started again while paused" in check.detail


def _source_check(start: SourceStatements, end: SourceStatements, drained: bool = True) -> Check:
    evidence = _evidence(observed=Observations(pauses=[_pause(drained=drained, source=(start, end))]),
                         appended_between=lambda lo, hi: [], paused_statements=("max(id)",))
    (check,) = _judged("pause_honoured", evidence)
    return check


def test_pause_honoured_fails_reads_of_the_source_while_paused_but_not_its_declared_poll() -> None:
    check = _source_check(_statements(5, 3), _statements(24, 9))
    assert not check.ok and f"19 statements on the source table while paused (19x {READ!r})" in check.detail
    polled = _source_check(_statements(5, 3), _statements(5, 9))
    assert polled.ok and "0 statements on the source table" in polled.detail, polled.detail
    new_statement = _source_check(SourceStatements({POLL: 3}), SourceStatements({POLL: 3, READ: 2}))
    assert not new_statement.ok and "2 statements" in new_statement.detail  # a statement first seen while paused


def test_pause_honoured_allows_one_statement_in_flight_only_when_not_drained() -> None:
    assert not _source_check(_statements(5, 0), _statements(6, 0), drained=True).ok
    assert _source_check(_statements(5, 0), _statements(6, 0), drained=False).ok
    assert not _source_check(_statements(5, 0), _statements(7, 0), drained=False).ok


def test_pause_honoured_says_when_the_source_was_not_measured() -> None:
    reset = _source_check(_statements(50, 3), _statements(2, 1))  # the server restarted: counters from zero
    assert reset.ok and "source reads not measured (Postgres's statement counters went back" in reset.detail
    shared = _source_check(SourceStatements(unmeasured="the exporter shares the harness's Postgres role"),
                           _statements(1, 0))
    assert shared.ok and "not measured (the exporter shares" in shared.detail
    (by_replication,) = _judged("pause_honoured", _evidence(observed=Observations(pauses=[_pause()]),
                                                            appended_between=lambda lo, hi: []))
    assert "not measured (it reads by replication)" in by_replication.detail


def test_delivered_between_reads_file_lines_from_one() -> None:
    lines = [SinkRecord(i, str(i), b"", "", None, "file:/s", i) for i in (1, 2, 3)]  # positions are line numbers
    assert delivered_between(lines, FlowMark(0, {"file:/s": 1}, 1), FlowMark(1, {"file:/s": 3}, 1)) == [2, 3]


def test_a_teams_own_check_with_its_own_expect_field_is_judged_like_a_builtin(tmp_path: Path) -> None:
    module = tmp_path / "team_checks_probe.py"
    module.write_text(textwrap.dedent('''
        from harness.checks import CheckKind, check_kind
        from harness.report.journal import Check

        @check_kind
        class Probe(CheckKind):
            name = "team_probe"
            expect_field = "team_probe"
            default = False
            summary = "a team's own invariant"

            def judge(self, evidence):
                return [Check(self.name, False, "the team's invariant broke")]
    '''))
    sys.path.insert(0, str(tmp_path))
    try:
        __import__("team_checks_probe")
        assert "team_probe" in checks.custom_fields()
        on = Expect(custom={"team_probe": True})
        checks.verify_custom(on, "s.py")
        found = [c for c in judge_all(_evidence(expect=on)) if c.name == "team_probe"]
        assert found and not found[0].ok
        assert not [c for c in judge_all(_evidence()) if c.name == "team_probe"]  # default off
        with pytest.raises(CheckKindError, match="s.py: expect.custom.nobody_reads_me is read by no registered check"):
            checks.verify_custom(Expect(custom={"nobody_reads_me": True}), "s.py")
        verify()  # a team's custom field does not upset the built-ins
    finally:
        sys.path.remove(str(tmp_path))
        checks.registry._REGISTRY.pop("team_probe", None)
        sys.modules.pop("team_checks_probe", None)


def test_a_check_must_name_itself_and_may_not_take_a_builtins_name() -> None:
    with pytest.raises(CheckKindError):
        check_kind(type("Nameless", (CheckKind,), {}))
    with pytest.raises(CheckKindError, match="clashes"):
        check_kind(type("Impostor", (CheckKind,), {"name": "no_loss"}))


def test_letters_taken_on_trust_and_undeclared_reach_report_json_and_html(tmp_path: Path) -> None:
    from harness.report.report_file import read_report
    from harness.report.reports import write_all
    from harness.report.result import LedgerSummary, RunReport, ScenarioResult, Verdict

    ledger = LedgerSummary(ok=False, counts={"dead_lettered": 5}, letters_verified=1, letters_trusted=2,
                           letters_undeclared=2)
    result = ScenarioResult("demo", "d", None, verdict=Verdict.FAIL, ledger=ledger,
                            checks=[Check("dead_letters_have_reasons", False, "2 with a reason the target does not "
                                                                              "declare: 'why not' x2")])
    write_all(tmp_path, RunReport(run_id="r", target="t", backend="local", verdict=Verdict.FAIL, duration_s=1.0,
                                  scenarios=[result]))
    html = (tmp_path / "report.html").read_text()
    assert "1 hold, 2 taken on trust, 2 with a reason the target does not declare" in html
    back = read_report(tmp_path / "report.json").scenarios[0].ledger
    assert back is not None and (back.letters_trusted, back.letters_undeclared) == (2, 2)


@pytest.mark.parametrize("healthy", [True, False])
def test_steady_state_after_says_what_it_saw(healthy: bool) -> None:
    """Its failure once read "exporter healthy after healing": a detail must say the verdict's way."""
    checks = registered_checks()["steady_state_after"].judge(_evidence(steady=SteadyState(healthy_after=healthy)))
    assert [c.ok for c in checks] == [healthy]
    assert ("not healthy" in checks[0].detail) is (not healthy), checks[0].detail
