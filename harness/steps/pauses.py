"""Pause and resume: an operator's pause with a grace period (the bundled protocol, or Kafka
Connect's REST API) and its resume. Each records what it measured (``PauseObservation``,
``ActionAnswer``); the pause checks judge it (harness.checks.pauses)."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import httpx
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.infra.waiting import WaitTimeout, wait_for
from harness.model.api_tokens import HARNESS_USER
from harness.model.capabilities import Need
from harness.report.journal import ActionAnswer, PauseObservation
from harness.steps.answers import answer
from harness.steps.base import STRICT, StepKind, World
from harness.steps.pause_watch import acknowledged, end_open_pauses
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

PAUSE_MARGIN_S = 1.5


@step_kind
@dataclass(frozen=True, config=STRICT)
class Pause(StepKind):
    """Ask the exporter to pause with a grace period; it must answer within grace + a margin."""

    kind_name: ClassVar[str] = "pause"
    role: ClassVar = "action"
    waits: ClassVar[bool] = True
    grace_s: Annotated[float, Field(ge=0, le=3600)]

    draw_share: ClassVar[float] = 0.4

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Pause:
        return cls(grace_s=rng.choice((1.0, 2.0, 3.0)))

    def follow_up(self) -> tuple[StepKind, float]:
        return Resume(), self.grace_s + 0.5  # a pause is ended, once its grace is over

    def fitted(self, window_left_s: float) -> Pause:
        # The grace runs out while the trouble it was asked in is still on (pause-grace-never-fires).
        if window_left_s <= 0.7:
            return self
        return Pause(grace_s=round(max(0.5, min(self.grace_s, window_left_s - 0.2)), 1))

    def describe(self) -> str:
        return f"pause (grace {self.grace_s}s)"

    def deadline(self, run: StepContext) -> float:
        return self.grace_s + PAUSE_MARGIN_S + self.deadline_s  # it waits its grace, and may rightly

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.api("pause")})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        within = self.grace_s + PAUSE_MARGIN_S
        if run.target.pause_protocol == "connect":
            status, state, elapsed = _connect_state(run, record, "pause", "PAUSED", within)
            reached = f"after {elapsed}s" if state == "PAUSED" else f"not reached within {within}s"
            observed = PauseObservation(self.grace_s, within, status, state, elapsed,
                                        acknowledged=state == "PAUSED", drained=None,
                                        detail=f"pause answered {status}; PAUSED {reached}")
        else:
            exporter = run.live_exporter()
            started = time.monotonic()
            status, body = answer(lambda: exporter.post(run.target.pause_path, params={"grace": self.grace_s},
                                                        timeout=within + 2))
            elapsed = round(time.monotonic() - started, 3)
            drained = body.get("drained")
            observed = PauseObservation(
                self.grace_s, within, status, body.get("state"), elapsed,
                acknowledged=status == 200 and body.get("state") == "paused",
                drained=drained if isinstance(drained, bool) else None,
                detail=f"pause answered {status} {body.get('state')!r} after {elapsed}s (grace {self.grace_s}s + "
                       f"{PAUSE_MARGIN_S}s); drained={drained} pending={body.get('pending')} "
                       f"error={body.get('error')!r}")
            record.result = {"elapsed_s": elapsed, **body}
        if observed.acknowledged:
            acknowledged(run, observed)  # marks where the pipeline stood: pause_honoured judges what moved after
        else:
            run.observed.pauses.append(observed)


@step_kind
@dataclass(frozen=True, config=STRICT)
class Resume(StepKind):
    """Ask a paused exporter to take up its work again."""

    kind_name: ClassVar[str] = "resume"
    role: ClassVar = "action"
    draw_share: ClassVar[float] = 0.0  # only as a pause's follow-up
    # In line behind the waiting actions: a resume must never overtake the pause before it (found
    # by explore: asked while that pause still waited, it was undone by it, and the exporter
    # stayed paused with records in its buffer).
    waits: ClassVar[bool] = True

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Resume:
        return cls()

    def describe(self) -> str:
        return "resume"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.api("pause")})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        end_open_pauses(run, "resume")  # what moved while paused is measured up to here
        if run.target.pause_protocol == "connect":
            status, state, elapsed = _connect_state(run, record, "resume", "RUNNING", RESUME_WITHIN_S)
            failures = () if state == "RUNNING" else (f"RUNNING not reached within {RESUME_WITHIN_S}s",)
            run.observed.answers.append(ActionAnswer("resume", "the connector RUNNING again", failures,
                                                     f"resume answered {status}; {state} after {elapsed}s"))
            return
        exporter = run.live_exporter()
        status, body = answer(lambda: exporter.post(run.target.resume_path, timeout=10))
        record.result = {"status_code": status, **body}
        run.observed.answers.append(ActionAnswer("resume", "200", () if status == 200 else (f"answered {status}",),
                                                 f"resume answered {status}: {str(body)[:200]}"))


RESUME_WITHIN_S = 10.0


def _connect_state(run: StepContext, record: StepRecord, verb: str, state: str,
                   within_s: float) -> tuple[int | None, str, float]:
    """Kafka Connect's pause or resume: PUT, 202 at once, then the connector and its tasks reach
    ``state``, polled on the status path. Returns the PUT's status, the state reached (or "not
    reached") and how long it took."""
    exporter = run.live_exporter()
    path = run.target.pause_path if verb == "pause" else run.target.resume_path
    started = time.monotonic()
    try:
        accepted = exporter.http.put(path, headers=exporter.auth(HARNESS_USER), timeout=within_s).status_code
    except httpx.HTTPError as exc:
        accepted = None
        record.evidence = f"{verb}: {exc.__class__.__name__}: {exc}"

    def reached() -> dict[str, Any] | None:
        status, body = answer(lambda: exporter.get(run.target.status_path, timeout=2))
        states = [body.get("connector", {}).get("state")] + [t.get("state") for t in body.get("tasks", [])]
        return body if status == 200 and all(s == state for s in states) else None

    body: dict[str, Any] | None = None
    if accepted in (200, 202, 204):
        try:
            body = wait_for(reached, timeout=within_s, interval=0.1, what=f"the connector to be {state}")
        except WaitTimeout:
            body = None
    elapsed = round(time.monotonic() - started, 3)
    reached_state = state if body else "not reached"
    record.result = {"elapsed_s": elapsed, "status_code": accepted, "state": reached_state}
    return accepted, reached_state, elapsed
