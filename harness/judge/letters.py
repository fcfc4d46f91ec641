"""Dead letters are not taken on their word: each reason is checked against the record's bytes
and the limits the sink really enforced. A record dead-lettered as too large that the broker
accepts on its own, or as malformed though it is valid UTF-8, was deliverable: it is its own
class in the ledger (misrouted) and fails ``no_loss`` like a lost record.

The target definition says what each of its reasons means (``[dead_letter_reasons]``: the
exporter's reason -> a kind):

- ``not_utf8``, ``too_large``: about the record's content, checked against its bytes and the
  sink's limit (one too close to the limit to call is taken on trust, and counted so);
- ``unencodable``, ``trusted``: about its content, taken on trust (the report says how many);
- ``delivery``: about getting it there, not about the record: after healing it is offered to the
  sink again, and one the sink takes was deliverable.

A letter whose reason is about the record's content (any kind but ``delivery``) while the sink
holds the same record is contradicted by the sink itself: the broker or the file took what the
exporter said could not be taken (an error after the write, a refusal that was not one).

A reason the target does not declare is a violation (``dead_letters_have_reasons``), never
"unverified": and since nobody said it is about the content, the record is offered again too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.judge.sinks import DeadLetterRecord
from harness.model.target import LetterKind

CHECKED_ALONE_MAX = 1000  # records produced alone to the scratch topic per run, at most


@dataclass(frozen=True)
class SinkLimits:
    """The strictest record size the sink enforced during the run: the topic's
    ``max.message.bytes`` (lowest value in force), and a limit the scenario declared for the
    exporter (the ``max_record_bytes`` knob). ``slack``: how close to a limit a record may be and
    still be called deliverable (the exporter's own envelope around a payload is not known)."""

    topic_max_bytes: int | None = None
    declared_max_bytes: int | None = None
    slack: int = 256

    @property
    def limit(self) -> int | None:
        known = [x for x in (self.topic_max_bytes, self.declared_max_bytes) if x]
        return min(known) if known else None


@dataclass
class LetterCheck:
    misrouted: dict[int, str] = field(default_factory=dict)  # record id -> why it was deliverable
    verified: int = 0  # reasons checked, and they hold
    trusted: int = 0  # reasons taken on trust (declared so, or too close to a limit to call)
    undeclared: dict[str, int] = field(default_factory=dict)  # reason the target never declared -> letters
    contradicted: dict[int, str] = field(default_factory=dict)  # record id -> a content reason the sink disproves


# produce_alone(value, limit): True when a topic with max.message.bytes=limit accepts it alone.
ProduceAlone = Callable[[bytes, int], bool]
# offer_again(value): True when the sink, healed, takes the record (a scratch topic with the
# sink's limit, a scratch file).
OfferAgain = Callable[[bytes], bool]


def check_letters(letters: Iterable[DeadLetterRecord], reasons: dict[str, LetterKind], limits: SinkLimits,
                  produce_alone: ProduceAlone | None, offer_again: OfferAgain | None = None,
                  delivered: frozenset[int] = frozenset()) -> LetterCheck:
    """``delivered``: the record ids the sink holds (a content reason for one of them is false)."""
    result = LetterCheck()
    asked = 0  # records sent to a scratch sink: bounded per run
    for letter in letters:
        reason = letter.reason.strip()
        if not letter.record_id.isdigit() or not reason:
            continue  # no written record: unexpected; no reason: dead_letters_have_reasons says so
        kind = reasons.get(reason)
        if kind is None:
            result.undeclared[reason] = result.undeclared.get(reason, 0) + 1
        elif kind != "delivery" and int(letter.record_id) in delivered:
            result.contradicted[int(letter.record_id)] = f"dead-lettered as {reason!r} but the sink holds it"
        verdict: str | bool | None
        if kind == "not_utf8":
            verdict = _check_utf8(letter.original)
        elif kind == "too_large":
            verdict, used_broker = _check_size(letter.original, limits, produce_alone, asked < CHECKED_ALONE_MAX)
            asked += used_broker
        elif kind in ("delivery", None) and offer_again is not None and asked < CHECKED_ALONE_MAX:
            asked += 1
            verdict = "the sink took it when it was offered again after healing" if offer_again(letter.original) \
                else False
        else:
            verdict = None
        if verdict is None:
            result.trusted += kind is not None
        elif verdict:
            result.misrouted[int(letter.record_id)] = f"dead-lettered as {letter.reason!r} but {verdict}"
        else:
            result.verified += 1
    return result


def _check_utf8(original: bytes) -> str | bool:
    """False (really not UTF-8) or why it is deliverable."""
    try:
        original.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "its bytes are valid UTF-8"


def _check_size(original: bytes, limits: SinkLimits, produce_alone: ProduceAlone | None,
                may_produce: bool) -> tuple[str | bool | None, bool]:
    """(verdict, whether the broker was asked): False really too large, a reason when it fits,
    None when it cannot be told (no known limit, or too close to it to judge)."""
    limit = limits.limit
    size = len(original)
    if limit is None:
        return None, False
    if size > limit:
        return False, False
    if size + limits.slack > limit:
        return None, False  # within the envelope an exporter adds: not judged
    if limits.topic_max_bytes is None or produce_alone is None or not may_produce:
        return f"{size} bytes fit the sink's limit of {limit}", False
    if produce_alone(original, limit):
        return f"a topic with max.message.bytes={limit} accepted its {size} bytes alone", True
    return False, True
