"""The timeline keeps its fault windows while an action waits (found by explore: an export job
waited inline for its answer, so a table lock meant for 1.6 s stayed held for 30 s)."""

from __future__ import annotations

import pytest

from harness.scenario import Expect, Export, LinkDown, Pause, Resume, Scenario, Step, Workload
from harness.steps.load import Load

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(180)]

WINDOW_S = 1.0
SCENARIO = Scenario(
    name="pause_waits_beside_a_fault",
    description="Kafka down for 1s; a pause with 4s of grace asked inside it cannot drain until it ends",
    workload=Workload(records=300, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.5, duration=WINDOW_S),
        Step("during", Pause(grace_s=4.0), at=0.7),
        Step("after", Resume()),
    ),
    expect=Expect(pause_within_grace=False),
    during_s=3.0,
)


def test_a_waiting_action_never_holds_a_fault_window_open(run_scenario) -> None:  # noqa: ANN001
    result = run_scenario(SCENARIO)
    link = next(s for s in result.steps if "link down" in s.description)
    pause = next(s for s in result.steps if s.description.startswith("pause"))
    assert link.applied_at is not None and link.removed_at is not None and pause.applied_at is not None
    held = link.removed_at - link.applied_at
    assert held < WINDOW_S + 0.7, f"the {WINDOW_S}s window was held {held:.2f}s (the pause waited inline)"
    assert pause.applied_at < link.removed_at  # the pause was asked inside the window it waited through
    assert result.error is None and result.verdict.value == "pass", result.violations


RESUME_EARLY = Scenario(
    name="resume_asked_before_the_pause_answered",
    description="A pause whose grace runs past the time its resume is due: the resume still comes after it",
    workload=Workload(records=300, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkDown("kafka"), at=0.3, duration=3.0),
        Step("during", Pause(grace_s=2.5), at=0.5),
        Step("during", Resume(), at=1.0),  # due while the pause still waits for its grace
    ),
    expect=Expect(pause_within_grace=False),
    during_s=3.5,
)


def test_a_resume_is_asked_only_after_the_pause_before_it_answered(run_scenario) -> None:  # noqa: ANN001
    """Failed before its fix: the pause waited beside the timeline and the resume, asked inline,
    overtook it; the exporter then paused for good and kept the rest in its buffer."""
    result = run_scenario(RESUME_EARLY)
    pause = next(s for s in result.steps if s.description.startswith("pause"))
    resume = next(s for s in result.steps if s.description == "resume")
    assert pause.result is not None and resume.applied_at is not None and pause.applied_at is not None
    assert resume.applied_at >= pause.applied_at + pause.result["elapsed_s"] - 0.05
    assert result.error is None and result.verdict.value == "pass", [c.detail for c in result.violations]


EXPORT_DURING_LOAD = Scenario(
    name="export_during_locust_load",
    description="A Locust source load writes while an export job reads the whole table",
    workload=Workload(records=200, chunk=50),
    steps=(
        Step("during", Load(kind="source", users=4, wait_s=0.05, rows_per_write=5), at=0.2, duration=3.0),
        Step("during", Export("during-load.jsonl", expect_state="either"), at=1.5),
    ),
    expect=Expect(),
    during_s=3.5,
)


def test_an_export_during_a_load_knows_the_rows_the_load_wrote(run_scenario) -> None:  # noqa: ANN001
    """Failed before its fix (found by explore): the load's rows reach the ledger when it ends, so
    the export check called the ones the job exported "unexpected"."""
    result = run_scenario(EXPORT_DURING_LOAD)
    export = next(c for c in result.checks if c.name.startswith("export:"))
    assert export.ok and "every row intact" in export.detail, export.detail
    assert result.verdict.value == "pass", [c.detail for c in result.violations]
