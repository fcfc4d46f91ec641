"""The exporter's counters are read once they count what the sink holds: a message is in the topic
before the exporter hears it was written (found by CI's explore: a produce answer held back 3 s,
and a scrape right after the drain read 250 delivered of 260, judging a correct exporter wrong)."""

from __future__ import annotations

from harness.judge.sinks import SinkRecord
from harness.play.verdict import SinkContents, settled_counters


class Lagging:
    """Counters that reach ``final`` after ``lag`` scrapes."""

    def __init__(self, final: float, lag: int) -> None:
        self.final, self.lag, self.scrapes = final, lag, 0

    def metrics(self) -> dict[str, float]:
        self.scrapes += 1
        return {"delivered": self.final - 10 if self.scrapes <= self.lag else self.final, "dead_lettered": 0.0}

    def metric_total(self, key: str, samples: dict[str, float]) -> float:
        return samples[key]


SEEN = SinkContents([SinkRecord(i) for i in range(260)] + [SinkRecord(7)], [])  # a redelivery counts once


def test_a_lagging_counter_is_read_once_it_caught_up() -> None:
    exporter = Lagging(260, lag=3)
    assert settled_counters(exporter, SEEN)["delivered"] == 260  # type: ignore[arg-type]
    assert exporter.scrapes == 4


def test_a_counter_that_never_catches_up_is_judged_as_it_is() -> None:
    exporter = Lagging(250, lag=10_000)
    assert settled_counters(exporter, SEEN, timeout=0.5)["delivered"] == 240  # type: ignore[arg-type]
