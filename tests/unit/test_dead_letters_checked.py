"""Dead letters are checked, not trusted: the rules (letters.py) and the ledger class they feed."""

from __future__ import annotations

import dataclasses

from harness.judge.ledger import Written
from harness.judge.letters import SinkLimits, check_letters
from harness.judge.reconcile import DEAD_LETTERED, DEAD_LETTERED_DELIVERABLE, reconcile
from harness.judge.sinks import DeadLetterRecord

REASONS = {"malformed_row": "not_utf8", "too_large": "too_large", "odd": "trusted", "retries_exhausted": "delivery"}


def letter(record_id: int, reason: str, original: bytes) -> DeadLetterRecord:
    return DeadLetterRecord(str(record_id), reason, "", "deliver", original)


def test_a_malformed_letter_of_valid_utf8_is_misrouted_and_a_real_one_holds() -> None:
    check = check_letters([letter(1, "malformed_row", b"\xff\xfe"), letter(2, "malformed_row", "好".encode())],
                          REASONS, SinkLimits(), None)  # type: ignore[arg-type]
    assert check.verified == 1 and list(check.misrouted) == [2]
    assert "valid UTF-8" in check.misrouted[2]


def test_too_large_is_judged_by_the_strictest_limit_and_the_broker() -> None:
    asked: list[tuple[int, int]] = []

    def broker(value: bytes, limit: int) -> bool:
        asked.append((len(value), limit))
        return len(value) + 80 <= limit  # a topic takes a record alone when it fits with its overhead

    limits = SinkLimits(topic_max_bytes=2000, declared_max_bytes=None, slack=256)
    letters = [letter(1, "too_large", b"x" * 5000),  # over the limit: holds, no need to ask
               letter(2, "too_large", b"x" * 150),  # fits: the broker takes it alone -> misrouted
               letter(3, "too_large", b"x" * 1900)]  # within the slack of the limit: not judged
    check = check_letters(letters, REASONS, limits, broker)  # type: ignore[arg-type]
    assert check.verified == 1 and list(check.misrouted) == [2] and check.trusted == 1
    assert asked == [(150, 2000)]
    assert "max.message.bytes=2000 accepted its 150 bytes alone" in check.misrouted[2]


def test_a_declared_limit_without_a_broker_still_judges_by_size() -> None:
    limits = SinkLimits(topic_max_bytes=None, declared_max_bytes=2000)
    check = check_letters([letter(1, "too_large", b"o" * 2100), letter(2, "too_large", b"o" * 100)], REASONS,
                          limits, None)  # type: ignore[arg-type]
    assert check.verified == 1 and list(check.misrouted) == [2]


def test_a_trusted_reason_is_counted_as_such_and_an_undeclared_one_is_named() -> None:
    check = check_letters([letter(1, "odd", b"x"), letter(2, "who knows", b"x"), letter(3, "who knows", b"y")],
                          REASONS, SinkLimits(), None)  # type: ignore[arg-type]
    assert check.trusted == 1 and check.undeclared == {"who knows": 2}
    assert not check.misrouted and check.verified == 0


def test_delivery_and_undeclared_reasons_are_offered_to_the_healed_sink_again() -> None:
    offered: list[bytes] = []

    def sink_takes(value: bytes) -> bool:
        offered.append(value)
        return value != b"refused"

    letters = [letter(1, "retries_exhausted", b"fine"), letter(2, "retries_exhausted", b"refused"),
               letter(3, "delivery_timeout", b"fine too"), letter(4, "odd", b"trusted: not offered")]
    check = check_letters(letters, REASONS, SinkLimits(), None, sink_takes)  # type: ignore[arg-type]
    assert offered == [b"fine", b"refused", b"fine too"]
    assert sorted(check.misrouted) == [1, 3] and check.verified == 1 and check.trusted == 1
    assert "offered again after healing" in check.misrouted[3]
    assert check.undeclared == {"delivery_timeout": 1}


def test_a_misrouted_letter_is_its_own_ledger_class_and_a_violation() -> None:
    writes = [Written(1, "k1", b"a", "ok"), Written(2, "k2", b"b", "ok")]
    letters = [letter(1, "too_large", b"a"), letter(2, "too_large", b"b")]
    outcome = reconcile(writes, [], letters, misrouted={2: "fits"})
    assert outcome.classes[DEAD_LETTERED_DELIVERABLE] == [2] and outcome.count(DEAD_LETTERED) == 1
    assert not outcome.ok and "1 dead_lettered_deliverable" in outcome.violations()
    assert outcome.summary()["misrouted_samples"] == {"2": "fits"}


def test_a_content_reason_is_contradicted_when_the_sink_holds_the_record_a_delivery_reason_is_not() -> None:
    letters = [letter(1, "odd", b"x"), letter(2, "odd", b"y"), letter(3, "retries_exhausted", b"z"),
               letter(4, "malformed_row", b"\xff")]
    check = check_letters(letters, REASONS, SinkLimits(), None, delivered=frozenset({1, 3, 4}))
    assert check.contradicted == {1: "dead-lettered as 'odd' but the sink holds it",
                                  4: "dead-lettered as 'malformed_row' but the sink holds it"}
    assert check_letters(letters, REASONS, SinkLimits(), None).contradicted == {}


def test_dead_letters_have_reasons_fails_on_a_contradicted_letter() -> None:
    from harness.checks.base import Evidence
    from harness.checks.records import DeadLettersHaveReasons
    from harness.judge.letters import LetterCheck
    from harness.scenario import Expect

    outcome = reconcile([Written(1, "k1", b"x", "ok")], [], [letter(1, "odd", b"x")])
    evidence = Evidence(expect=Expect(), capabilities=frozenset({"dead_letters"}), target_name="t", outcome=outcome,
                        letters=LetterCheck(contradicted={1: "dead-lettered as 'odd' but the sink holds it"}))
    [check] = DeadLettersHaveReasons().judge(evidence)
    assert not check.ok and "1 contradicted by the sink: ids [1]" in check.detail
    [held] = DeadLettersHaveReasons().judge(dataclasses.replace(evidence, letters=LetterCheck()))
    assert held.ok
