"""Per-key order and duplicates per fault window: the anomaly classes beside loss."""

from __future__ import annotations

from harness.checks import Evidence, registered_checks
from harness.judge.anomalies import BEFORE_ANY_FAULT, UNKNOWN_TIME, duplicates_by_window
from harness.judge.ledger import Ledger, content_hash
from harness.judge.reconcile import reconcile
from harness.judge.sinks import SinkRecord
from harness.report.journal import Check, StepRecord
from harness.scenario import Expect


def order_check(outcome) -> Check:  # noqa: ANN001
    return registered_checks()["key_order"].judge(Evidence(Expect(), frozenset(), "t", outcome=outcome))[0]


def duplicate_check(expect: Expect, outcome, by_window: dict[str, int]) -> list[Check]:  # noqa: ANN001
    evidence = Evidence(expect, frozenset(), "t", outcome=outcome, duplicates_by_window=by_window)
    check = registered_checks()["duplicates"]
    return check.judge(evidence) if check.enabled(expect) else []


def _ledger(writes: list[tuple[int, str]]) -> Ledger:
    """(record id, key) in the order the writes were acknowledged; payload = the id."""
    ledger = Ledger()
    for record_id, key in writes:
        ledger.add(record_id, content_hash(str(record_id).encode()), "ok", key)
    return ledger


def _sink(ids: list[int], stream: str = "kafka:t/0", ts: list[float | None] | None = None) -> list[SinkRecord]:
    stamps = ts or [None] * len(ids)
    return [SinkRecord(i, str(i), b"", f"{stream}@{n}", stamps[n], stream) for n, i in enumerate(ids)]


def test_a_record_overtaken_by_a_later_write_of_its_key_is_an_inversion() -> None:
    ledger = _ledger([(1, "a"), (2, "a"), (3, "a"), (4, "b")])
    outcome = reconcile(ledger, _sink([1, 3, 2, 4]), [])
    assert outcome.inversion_count == 1
    assert outcome.inversions[0].record_id == 2 and outcome.inversions[0].overtaken_by == 3
    assert outcome.inversions[0].key == "a"
    check = order_check(outcome)
    assert not check.ok and "record 2 of key 'a'" in check.detail
    assert outcome.summary()["order_inversions"] == 1


def test_in_order_and_other_keys_interleaved_is_no_inversion() -> None:
    ledger = _ledger([(1, "a"), (2, "b"), (3, "a"), (4, "b")])
    outcome = reconcile(ledger, _sink([2, 1, 4, 3]), [])  # b overtakes a: different keys, allowed
    assert outcome.inversion_count == 0 and order_check(outcome).ok


def test_order_is_judged_per_stream() -> None:
    ledger = _ledger([(1, "a"), (2, "a")])
    sink = _sink([2], "kafka:t/1") + _sink([1], "kafka:t/0")
    assert reconcile(ledger, sink, []).inversion_count == 0


def test_a_redelivery_is_a_duplicate_not_an_inversion() -> None:
    ledger = _ledger([(1, "a"), (2, "a")])
    outcome = reconcile(ledger, _sink([1, 2, 1], ts=[10.0, 11.0, 12.0]), [])
    assert outcome.inversion_count == 0
    assert outcome.duplicates == 1 and outcome.redeliveries == [(1, 12.0)]


def test_overlapping_writes_are_concurrent_and_either_order_is_right() -> None:
    # A held transaction took id 1 first; id 2 committed while it was open; then id 1 committed.
    ledger = Ledger()
    held = ledger.tick()
    ledger.add(2, content_hash(b"2"), "ok", "a")
    ledger.add(1, content_hash(b"1"), "ok", "a", began=held)
    ledger.add(3, content_hash(b"3"), "ok", "a")  # began after both were acknowledged
    assert reconcile(ledger, _sink([2, 1, 3]), []).inversion_count == 0
    assert reconcile(ledger, _sink([1, 2, 3]), []).inversion_count == 0
    late = reconcile(ledger, _sink([3, 1, 2]), [])
    assert late.inversion_count == 2 and {x.record_id for x in late.inversions} == {1, 2}


def test_keys_survive_an_earlier_id_arriving_late() -> None:
    ledger = _ledger([(5, "a"), (3, "b")])  # the arrays shift to take id 3
    assert ledger.key_name(ledger.key_at(ledger.index(5) or 0)) == "a"
    assert ledger.key_name(ledger.key_at(ledger.index(3) or 0)) == "b"
    assert ledger.copy().ack_at(ledger.index(3) or 0) == 2 == ledger.began_at(ledger.index(3) or 0)


def test_duplicates_count_against_the_fault_they_follow() -> None:
    steps = [StepRecord("during", "kill exporter", applied_at=2.0, fault=True),
             StepRecord("during", "pause", applied_at=2.5),  # an action: not a window
             StepRecord("during", "link kafka down", applied_at=5.0, fault=True)]
    start = 1000.0
    by_window = duplicates_by_window([(1, start + 1), (2, start + 3), (3, start + 6), (4, start + 7), (5, None)],
                                     steps, start)
    assert by_window == {"link kafka down (from t=5.0s)": 2, BEFORE_ANY_FAULT: 1,
                         "kill exporter (from t=2.0s)": 1, UNKNOWN_TIME: 1}


def test_max_duplicates_bounds_redeliveries() -> None:
    ledger = _ledger([(1, "a")])
    outcome = reconcile(ledger, _sink([1, 1, 1]), [])
    assert duplicate_check(Expect(), outcome, {}) == []  # not judged unless asked
    assert not duplicate_check(Expect(max_duplicates=1), outcome, {})[0].ok
    assert duplicate_check(Expect(max_duplicates=2), outcome, {})[0].ok


def test_each_anomaly_class_reaches_every_report(tmp_path) -> None:  # noqa: ANN001
    from harness.report.journal import Check
    from harness.report.report_file import read_report
    from harness.report.reports import write_all
    from harness.report.result import LedgerSummary, RunReport, ScenarioResult, Verdict

    ledger = LedgerSummary(ok=False, counts={"delivered_intact": 9}, duplicates=4, order_inversions=2,
                           inversion_samples=["record 7 of key 'k1' reached kafka:t/0 after record 9"],
                           duplicates_by_window={"kill exporter (from t=3.0s)": 4})
    result = ScenarioResult("demo", "d", None, verdict=Verdict.FAIL, ledger=ledger,
                            checks=[Check("key_order", False, "2 record(s) out of source order"),
                                    Check("duplicates", False, "4 redelivered (at most 0)")])
    write_all(tmp_path, RunReport(run_id="r", target="t", backend="local", verdict=Verdict.FAIL, duration_s=1.0,
                                  scenarios=[result]))
    summary, html = (tmp_path / "summary.md").read_text(), (tmp_path / "report.html").read_text()
    junit = (tmp_path / "junit.xml").read_text()
    for text in (summary, html):
        assert "out of order" in text and "record 7 of key" in text and "kill exporter (from t=3.0s)" in text
    assert 'name="key_order"' in junit and 'name="duplicates"' in junit
    back = read_report(tmp_path / "report.json").scenarios[0].ledger
    assert back is not None and back.order_inversions == 2 and back.duplicates_by_window == {
        "kill exporter (from t=3.0s)": 4}
