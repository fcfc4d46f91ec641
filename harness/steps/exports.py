"""Export jobs: one submitted and waited for, or a burst of them per user; each records what
the exporter answered and what its files hold (``ActionAnswer``) for the export checks."""

from __future__ import annotations

import codecs
import random
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.infra.waiting import WaitTimeout, wait_for
from harness.model.api_tokens import HARNESS_USER, burst_user
from harness.model.capabilities import Need
from harness.report.journal import ActionAnswer
from harness.steps.answers import answer
from harness.steps.base import STRICT, Name, Problem, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

# A file name an export may be given: no path separators, nothing a server would refuse as input.
def encoding_problem(name: str) -> Problem | None:
    """An export's encoding must be a text encoding Python knows ("klingon" is not one, nor "base64",
    a bytes-to-bytes codec): the harness decodes the export with it to reconcile."""
    try:
        known = codecs.lookup(name)
    except LookupError:
        return Problem("encoding", f"{name!r} is not an encoding Python knows")
    if not getattr(known, "_is_text_encoding", True):
        return Problem("encoding", f"{name!r} is a codec between bytes, not a text encoding")
    return None


ExportName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")]


def finished_job(run: StepContext, job_id: str, user: str = HARNESS_USER) -> dict[str, Any] | None:
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
    format: Literal["jsonl", "csv"] = "jsonl"
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

    def deadline(self, run: StepContext) -> float:
        return 60 + run.scenario.fault_seconds + self.deadline_s  # its job is waited for that long

    def check(self) -> Problem | None:
        return encoding_problem(self.encoding)

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.api("exports")})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        from harness.judge.reconcile import reconcile
        from harness.judge.sinks import read_dead_letters, read_lines

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
        letters = run.plain_letters([x for x in read_dead_letters(run.stack, exporter.sink("dead_letter_stream"))
                                     if x.stage == exporter.sink("export_dead_letter_stage")])
        # The change workload's rows are in the export too, at whatever version each had then:
        # the record reconciler judges the record workload's rows.
        records = run.plain_records([r for r in read_lines(final, self.encoding) if r.record_id is not None])
        # Lines were decoded with the export's encoding; hashes compare the text as UTF-8, like the ledger.
        exported = run.with_running_loads(run.ledger.copy())
        exported.mark_indeterminate_from(submitted_at)
        outcome = reconcile(exported, records, letters)
        bad = outcome.violations()
        detail += f"; rows file={len(records)} dead-lettered={len(letters)}; " + (
            f"violations: {', '.join(bad)}; samples {outcome.summary()['samples']}" if bad else "every row intact "
            "or dead-lettered with a reason")
        self._answered(run, (() if state_ok else (f"ended {job['state']}",)) + tuple(bad), detail)

    def _answered(self, run: StepContext, failures: tuple[str, ...], detail: str) -> None:
        expected = "refused with a reason, failed clean, or completed intact" if self.expect_state == "either" \
            else f"{self.expect_state}, every row intact or dead-lettered with a reason"
        run.observed.answers.append(ActionAnswer(f"export:{self.name}", expected, failures, detail))


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

    def deadline(self, run: StepContext) -> float:
        return 120 + self.deadline_s  # each job of the burst is waited for up to 120 s

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.api("exports")})

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> ExportBurst | None:
        return None  # not drawn: how many a correct exporter accepts depends on its quota setting

    def apply(self, run: StepContext, record: StepRecord) -> Any:
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

    def _judge_jobs(self, run: StepContext, job_ids: list[tuple[str, str]], submitted_at: int) -> None:
        from harness.judge.reconcile import reconcile
        from harness.judge.sinks import read_lines

        unfinished, broken = [], []
        exported = run.with_running_loads(run.ledger.copy())
        exported.mark_indeterminate_from(submitted_at)
        for user, job_id in job_ids:
            job = wait_for(partial(finished_job, run, job_id, user), timeout=120, what=f"export job {job_id}")
            if job["state"] != "completed":
                unfinished.append(f"{job_id}: {job['state']} {job.get('error')}")
                continue
            outcome = reconcile(exported, run.plain_records(read_lines(Path(job["path"]))), [])
            if outcome.violations():
                broken.append(f"{job_id}: {', '.join(outcome.violations())}")
        run.observed.answers.append(ActionAnswer(
            "exports_complete", "every accepted job completed with every row intact", tuple(unfinished + broken),
            f"{len(job_ids)} accepted job(s): " + ("all completed with every row intact"
                                                   if not unfinished and not broken
                                                   else f"unfinished {unfinished[:3]}; incomplete {broken[:3]}")))
