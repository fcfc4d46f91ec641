"""The story of the first lost record: written, (not) buffered, the faults and the exporter's
log lines around it, in the run's order."""

from __future__ import annotations

from pathlib import Path

from harness.judge.story import MAX_EVENTS, loss_story
from harness.report.journal import Check, StepRecord
from harness.report.report_file import read_report
from harness.report.result import RunReport, ScenarioResult, Verdict

WALL = 1_000_000.0


def test_the_story_puts_writes_faults_and_log_lines_in_one_order() -> None:
    steps = [StepRecord("during", "postgres link down", applied_at=2.0, removed_at=3.0, fault=True,
                        in_flight_at_apply=40, evidence="proxy disabled"),
             StepRecord("during", "far away", applied_at=20.0, removed_at=21.0, fault=True)]
    logs = [{"ts": WALL + 2.05, "level": "error", "msg": "read pass failed; retrying", "stage": "source.read",
             "cause": "server closed the connection"},
            {"ts": WALL + 2.06, "level": "warning", "msg": "read-ahead interrupted; resuming after it",
             "checkpoint": 300, "ahead": 2300},
            {"ts": WALL + 1.0, "level": "info", "msg": "a quiet line"},
            {"ts": WALL + 1.5, "level": "info", "msg": "dead-lettered", "record_id": 301}]
    story = loss_story(301, "source->buffer (never reached the buffer)", 1.9, [(int((WALL + 1.2) * 1000), [299, 300])],
                       steps, logs, WALL)
    text = "\n".join(story.events)
    assert story.buffered_at_s is None and story.written_at_s == 1.9  # the tap never saw 301
    order = ["dead-lettered", "record 301 written", "fault applied: postgres link down (40 records in flight)",
             "read pass failed", "read-ahead interrupted", "fault removed: postgres link down; proxy disabled"]
    positions = [text.index(o) for o in order]
    assert positions == sorted(positions), text
    assert "ahead=2300" in text and "stage=source.read" in text
    assert "a quiet line" not in text and "far away" not in text  # info lines and far events are left out


def test_a_buffered_record_says_when_and_the_story_is_capped() -> None:
    logs = [{"ts": WALL + 1 + n / 100, "level": "error", "msg": f"e{n}"} for n in range(100)]
    story = loss_story(7, "buffer->sink", 1.0, [(int((WALL + 1.5) * 1000), [6, 7])], [], logs, WALL)
    assert story.buffered_at_s == 1.5 and len(story.events) == MAX_EVENTS and story.more > 0


def test_the_story_is_in_every_report(tmp_path: Path) -> None:
    from harness.report.reports import write_all

    story = loss_story(301, "source->buffer", 1.9, [], [], [{"ts": WALL + 2, "level": "error", "msg": "boom"}], WALL)
    result = ScenarioResult("s", "d", None, Verdict.FAIL, checks=[Check("no_loss", False, "1 lost")], loss_story=story)
    write_all(tmp_path, RunReport(run_id="r", target="t", backend="local", verdict=Verdict.FAIL, duration_s=1,
                                  scenarios=[result]))
    for name in ("summary.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "How record 301" in text and "exporter error: boom" in text, name
    back = read_report(tmp_path / "report.json").scenarios[0].loss_story
    assert back is not None and back.events == story.events
