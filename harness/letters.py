"""Dead letters are not taken on their word: each reason is checked against the record's bytes
and the limits the sink really enforced. A record dead-lettered as too large that the broker
accepts on its own, or as malformed though it is valid UTF-8, was deliverable: it is its own
class in the ledger (misrouted) and fails ``no_loss`` like a lost record.

The target definition says what its reasons mean (``[dead_letter_reasons]``: the exporter's
reason -> ``not_utf8``, ``too_large``, ``unencodable`` or ``unverifiable``); a reason it does not
map, or one that cannot be checked, is counted as unverified, never as proof.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from harness.sinks import DeadLetterRecord

LetterKind = Literal["not_utf8", "too_large", "unencodable", "unverifiable"]
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
    verified: int = 0
    unverified: int = 0


# produce_alone(value, limit): True when a topic with max.message.bytes=limit accepts it alone.
ProduceAlone = Callable[[bytes, int], bool]


def check_letters(letters: Iterable[DeadLetterRecord], reasons: dict[str, LetterKind], limits: SinkLimits,
                  produce_alone: ProduceAlone | None) -> LetterCheck:
    result = LetterCheck()
    checked_alone = 0
    for letter in letters:
        if not letter.record_id.isdigit():
            continue  # a letter for no written record is reconciled as unexpected
        kind = reasons.get(letter.reason.strip(), "unverifiable")
        verdict: str | bool | None
        if kind == "not_utf8":
            verdict = _check_utf8(letter.original)
        elif kind == "too_large":
            verdict, used_broker = _check_size(letter.original, limits, produce_alone,
                                               checked_alone < CHECKED_ALONE_MAX)
            checked_alone += used_broker
        else:
            verdict = None
        if verdict is None:
            result.unverified += 1
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
