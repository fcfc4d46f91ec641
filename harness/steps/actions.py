"""Actions: what an operator or a client does at an instant (pause, resume, export jobs, more
writes, a mid-run reconciliation). Each judges what it can on the spot and adds its checks."""

from __future__ import annotations

import dataclasses
import random
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import httpx
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.api_tokens import HARNESS_USER, burst_user
from harness.journal import ActionAnswer, PauseObservation
from harness.pause_watch import acknowledged, end_open_pauses
from harness.steps import step_kind
from harness.steps.base import STRICT, Name, StepKind, Window, World
from harness.waiting import WaitTimeout, wait_for

if TYPE_CHECKING:
    from harness.journal import StepRecord
    from harness.run import Run

PAUSE_MARGIN_S = 1.5
# A file name an export may be given: no path separators, nothing a server would refuse as input.
ExportName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")]


def answer(exporter_call: Any) -> tuple[int | None, dict[str, Any]]:
    """An exporter endpoint's status and JSON body. No answer, a 5xx or a body that is not a JSON
    object is the exporter's failure, described in the body for the check that reads it; never a
    harness error."""
    try:
        reply = exporter_call()
    except httpx.TimeoutException:
        return None, {"state": "no answer", "error": "timed out"}
    except httpx.HTTPError as exc:
        return None, {"state": "no answer", "error": f"{exc.__class__.__name__}: {exc}"}
    try:
        body = reply.json()
    except ValueError:
        return reply.status_code, {"state": f"answered {reply.status_code} with a body that is not JSON",
                                   "error": reply.text[:200]}
    if not isinstance(body, dict):
        return reply.status_code, {"state": f"answered {reply.status_code} with JSON that is not an object",
                                   "error": str(body)[:200]}
    return reply.status_code, body


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

    def needs(self) -> frozenset[str]:
        return frozenset({"api:pause"})

    def apply(self, run: Run, record: StepRecord) -> Any:
        within = self.grace_s + PAUSE_MARGIN_S
        if run.target.pause_protocol == "connect":
            status, state, elapsed = _connect_state(run, record, "pause", "PAUSED", within)
            reached = f"after {elapsed}s" if state == "PAUSED" else f"not reached within {within}s"
            observed = PauseObservation(self.grace_s, "connect", within, status, state, elapsed,
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
                self.grace_s, "grace", within, status, body.get("state"), elapsed,
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

    def needs(self) -> frozenset[str]:
        return frozenset({"api:pause"})

    def apply(self, run: Run, record: StepRecord) -> Any:
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


def _connect_state(run: Run, record: StepRecord, verb: str, state: str,
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


def finished_job(run: Run, job_id: str, user: str = HARNESS_USER) -> dict[str, Any] | None:
    """The job's status once it is completed or failed; None while it runs (or while the
    exporter does not answer: the wait's deadline judges that)."""
    exporter = run.live_exporter()
    status, job = answer(lambda: exporter.get(f"{run.target.exports_path}/{job_id}", timeout=10, as_user=user))
    return job if status == 200 and job.get("state") in ("completed", "failed") else None


@step_kind
@dataclass(frozen=True, config=STRICT)
class Export(StepKind):
    """Submit a batch export job and wait for it; ``expect_state`` is what a correct exporter reaches."""

    kind_name: ClassVar[str] = "export"
    role: ClassVar = "action"
    waits: ClassVar[bool] = True
    name: ExportName
    encoding: Name = "utf-8"
    format: Name = "jsonl"
    # "either": under faults a job may rightly fail or complete; judged on what it left behind.
    expect_state: Literal["completed", "failed", "either"] = "completed"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Export:
        # Under faults a job may fail or complete: either is right if a failure leaves nothing
        # behind and a completion is intact.
        # JSON lines only: the harness reconciles an export's rows from JSON, not from CSV.
        return cls(f"explore-{rng.randrange(10_000)}.jsonl", encoding=rng.choice(("utf-8", "utf-8", "gbk")),
                   expect_state="either")

    def describe(self) -> str:
        return f"export job {self.name} ({self.format}, {self.encoding})"

    def needs(self) -> frozenset[str]:
        return frozenset({"api:exports"})

    def apply(self, run: Run, record: StepRecord) -> Any:
        from harness.reconcile import reconcile
        from harness.sinks import read_dead_letters, read_lines
        from harness.waiting import WaitTimeout, wait_for

        exporter = run.live_exporter()
        submitted_at = run.ledger.span  # rows written after this may or may not be exported
        status, submitted = answer(lambda: exporter.post(run.target.exports_path, json={
            "format": self.format, "encoding": self.encoding, "overwrite": True,
            "destination": {"kind": "file", "name": self.name}}, timeout=30))
        if status != 202 or "id" not in submitted:
            # Explore's "either": a refusal with a reason (quota, disk guard, source down) is right.
            refused = self.expect_state == "either" and status in (429, 503) and bool(submitted.get("detail"))
            self._answered(run, () if refused else (f"submission answered {status}",),
                           f"submission answered {status}: {str(submitted)[:300]}")
            record.result = {"status_code": status}
            return
        job_id = str(submitted["id"])
        try:
            job = wait_for(partial(finished_job, run, job_id), timeout=60 + run.scenario.fault_seconds,
                           what=f"export job {job_id} to finish")
        except WaitTimeout as exc:
            self._answered(run, ("it never finished",), str(exc))  # the exporter's failure
            return
        record.result = job
        # The job names its file (an exporter may keep each user's exports apart).
        final = Path(job["path"]) if job.get("path") else Path(exporter.sink("export_dir")) / self.name
        export_dir = final.parent
        leftovers = sorted(p.name for p in export_dir.iterdir() if p.name != self.name) if export_dir.exists() else []
        state_ok = self.expect_state in (job["state"], "either")
        detail = f"job {job_id} ended {job['state']!r} (expected {self.expect_state!r})"
        if job["state"] == "failed":
            clean = not final.exists() and not leftovers and bool(job.get("error"))
            detail += f"; error={job.get('error')!r}; final file present={final.exists()}; leftovers={leftovers}"
            self._answered(run, (() if state_ok else ("ended failed",)) + (() if clean else ("left files behind "
                           "or gave no error",)), detail)
            return
        letters = [x for x in read_dead_letters(run.stack, exporter.sink("dead_letter_stream"))
                   if x.stage == exporter.sink("export_dead_letter_stage")]
        records = [r for r in read_lines(final, self.encoding) if r.record_id is not None]
        # Lines were decoded with the export's encoding; hashes compare the text as UTF-8, like the ledger.
        exported = run.with_running_loads(run.ledger.copy())
        exported.mark_indeterminate_from(submitted_at)
        outcome = reconcile(exported, records, letters)
        bad = outcome.violations()
        detail += f"; rows file={len(records)} dead-lettered={len(letters)}; " + (
            f"violations: {', '.join(bad)}; samples {outcome.summary()['samples']}" if bad else "every row intact "
            "or dead-lettered with a reason")
        self._answered(run, (() if state_ok else (f"ended {job['state']}",)) + tuple(bad), detail)

    def _answered(self, run: Run, failures: tuple[str, ...], detail: str) -> None:
        expected = "refused with a reason, failed clean, or completed intact" if self.expect_state == "either" \
            else f"{self.expect_state}, every row intact or dead-lettered with a reason"
        run.observed.answers.append(ActionAnswer(f"export:{self.name}", expected, failures, detail))


@step_kind
@dataclass(frozen=True, config=STRICT)
class Write(StepKind):
    """Write more records of the scenario's profile during a phase."""

    kind_name: ClassVar[str] = "write"
    role: ClassVar = "action"
    records: Annotated[int, Field(ge=1, le=10_000_000)]

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Write:
        return cls(records=rng.choice((20, 100, 300)))

    def describe(self) -> str:
        return f"write {self.records} records"

    def simpler(self) -> list[StepKind]:
        return [Write(records=self.records // 2)] if self.records > 1 else []

    def apply(self, run: Run, record: StepRecord) -> Any:
        run.write(self.records)
        record.evidence = f"{self.records} records written"


@step_kind
@dataclass(frozen=True, config=STRICT)
class ExportBurst(StepKind):
    """Submit ``jobs`` export jobs at once for each of ``users``; a correct exporter accepts
    ``accepted_per_user`` of each user's (the rest 429, or all 503 when the disk guard refuses)
    and completes every accepted one."""

    kind_name: ClassVar[str] = "export_burst"
    role: ClassVar = "action"
    waits: ClassVar[bool] = True
    jobs: Annotated[int, Field(ge=1, le=1000)]
    users: Annotated[int, Field(ge=1, le=100)] = 2
    accepted_per_user: Annotated[int, Field(ge=0, le=1000)] = 0
    refused_status: Annotated[int, Field(ge=400, le=599)] = 429

    def describe(self) -> str:
        return f"burst of {self.jobs} export jobs for each of {self.users} users"

    def needs(self) -> frozenset[str]:
        return frozenset({"api:exports"})

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> ExportBurst | None:
        return None  # not drawn: how many a correct exporter accepts depends on its quota setting

    def apply(self, run: Run, record: StepRecord) -> Any:
        exporter = run.live_exporter()
        submitted_at = run.ledger.span
        bodies: list[tuple[str, dict[str, Any]]] = [
            (burst_user(u), {"format": "jsonl", "destination": {"kind": "file", "name": f"burst-{u}-{n}.jsonl"}})
            for u in range(self.users) for n in range(self.jobs)]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="burst") as pool:
            replies = list(pool.map(lambda sent: exporter.post(run.target.exports_path, json=sent[1], timeout=30,
                                                                as_user=sent[0]), bodies))
        accepted: dict[str, list[str]] = {}
        refused_badly = []
        for (user, body), reply in zip(bodies, replies, strict=True):
            if reply.status_code == 202:
                accepted.setdefault(user, []).append(reply.json()["id"])
            elif reply.status_code != self.refused_status or not reply.json().get("detail"):
                refused_badly.append(f"{body['destination']['name']}: {reply.status_code} {reply.text[:200]}")
        counts = {burst_user(u): len(accepted.get(burst_user(u), [])) for u in range(self.users)}
        wrong = [f"{user} had {n} accepted" for user, n in counts.items() if n != self.accepted_per_user]
        run.observed.answers.append(ActionAnswer(
            "export_admission", f"{self.accepted_per_user} accepted per user, the others {self.refused_status} with "
            "a reason", tuple(wrong + refused_badly[:3]),
            f"accepted per user {counts} (expected {self.accepted_per_user} each); others answered "
            f"{self.refused_status} with a reason"
            + (f"; wrong refusals: {refused_badly[:3]}" if refused_badly else "")))
        self._judge_jobs(run, [(user, j) for user, ids in accepted.items() for j in ids], submitted_at)
        record.result = {"accepted": counts, "refused": len(bodies) - sum(counts.values())}

    def _judge_jobs(self, run: Run, job_ids: list[tuple[str, str]], submitted_at: int) -> None:
        from harness.reconcile import reconcile
        from harness.sinks import read_lines
        from harness.waiting import wait_for

        unfinished, broken = [], []
        exported = run.with_running_loads(run.ledger.copy())
        exported.mark_indeterminate_from(submitted_at)
        for user, job_id in job_ids:
            job = wait_for(partial(finished_job, run, job_id, user), timeout=120, what=f"export job {job_id}")
            if job["state"] != "completed":
                unfinished.append(f"{job_id}: {job['state']} {job.get('error')}")
                continue
            outcome = reconcile(exported, read_lines(Path(job["path"])), [])
            if outcome.violations():
                broken.append(f"{job_id}: {', '.join(outcome.violations())}")
        run.observed.answers.append(ActionAnswer(
            "exports_complete", "every accepted job completed with every row intact", tuple(unfinished + broken),
            f"{len(job_ids)} accepted job(s): " + ("all completed with every row intact"
                                                   if not unfinished and not broken
                                                   else f"unfinished {unfinished[:3]}; incomplete {broken[:3]}")))


@step_kind
@dataclass(frozen=True, config=STRICT)
class Checkpoint(StepKind):
    """Reconcile mid-run: wait up to ``within_s`` for every record written so far to reach a
    sink or the dead-letter stream, then record what is delivered, in flight or missing (soaks
    place one after each quiet period; the final reconciliation still gives the verdict)."""

    kind_name: ClassVar[str] = "checkpoint"
    role: ClassVar = "action"
    within_s: Window = 10.0

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Checkpoint:
        return cls(within_s=rng.choice((2.0, 5.0)))

    def describe(self) -> str:
        return "checkpoint reconciliation"

    def apply(self, run: Run, record: StepRecord) -> Any:
        from harness.reconcile import DELIVERED_CORRUPTED, LOST, reconcile
        from harness.result import CheckpointPoint
        from harness.waiting import WaitTimeout, wait_for

        exporter = run.live_exporter()
        # The timeline is paused while this runs, so the ledger holds exactly what was written so far.
        ok_ids = run.ledger.ids("ok")
        state: dict[str, Any] = {}

        def settled() -> bool:
            state["sink"], state["letters"], ids = run.settled(exporter)
            return ok_ids <= ids

        t0 = time.monotonic()
        try:
            wait_for(settled, timeout=self.within_s, interval=0.5, what="checkpoint: records written so far to settle")
            in_time = True
        except WaitTimeout:
            in_time = False  # what is still missing is reported below; the end judges loss
        evidence = run.buffer_evidence()
        job_stage = run.target.sinks.get("export_dead_letter_stage")
        outcome = reconcile(run.ledger, state["sink"], [x for x in state["letters"] if x.stage != job_stage], evidence)
        missing = outcome.classes.get(LOST, [])
        in_flight = [i for i in missing if i in evidence.present or i in evidence.pending]  # still in the buffer
        point = CheckpointPoint(
            at=run.now(), written=len(ok_ids), settled_in_time=in_time, settle_s=round(time.monotonic() - t0, 3),
            missing=len(missing), missing_ids=sorted(missing)[:20],
            missing_hops=sorted({outcome.lost_hops[i] for i in missing}), in_flight=len(in_flight),
            corrupted=outcome.count(DELIVERED_CORRUPTED),
            # Rows Locust is writing reach the ledger when its step ends: until then they are
            # not "unexpected", they are not known yet (the end judges them).
            unexpected=0 if run.loads else len(outcome.unexpected), load_running=bool(run.loads))
        run.result.checkpoints.append(point)
        record.result = dataclasses.asdict(point)
