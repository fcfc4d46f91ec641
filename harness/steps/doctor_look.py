"""``doctor_look``: what ``faultline doctor`` reads from a running target after records were written
to its source: the ready answer, every metric its [metrics] names (present? moved?), how much of
its log its [log] format reads, and the sink's first messages (a topic's, a Redis stream's) as its
[record] format decodes them.
An action, never drawn by explore; its evidence is the doctor's (harness.play.doctor)."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic.dataclasses import dataclass
from redis.exceptions import RedisError

from harness.errors import HarnessError
from harness.judge.sink_readers import primary_sink
from harness.model.record_format import NotARecord
from harness.rig.exporter_process import MetricsUnavailable
from harness.steps.base import STRICT, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.rig.exporter_process import ExporterProcess
    from harness.steps.context import StepContext

ARRIVE_WITHIN_S = 30.0
SAMPLES = 3  # messages of the topic shown as they are and as [record] reads them


@step_kind
@dataclass(frozen=True, config=STRICT)
class DoctorLook(StepKind):
    """Read the running target as its definition describes it (faultline doctor)."""

    kind_name: ClassVar[str] = "doctor_look"
    role: ClassVar = "action"
    waits: ClassVar[bool] = True
    draw_share: ClassVar[float] = 0.0  # the doctor's own: nothing to explore

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> DoctorLook | None:
        return None  # not drawn: it judges nothing, it reads the definition's fields

    def describe(self) -> str:
        return "the doctor's look at the running target"

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        exporter = run.live_exporter()
        written = len(run.ledger.ids("ok"))
        arrived = _wait_arrived(run, written)
        record.result = {"written": written, "arrived": arrived, "ready": _ready(exporter),
                         "metrics": _metrics(exporter), "log": _log(exporter), "topic": _samples(run)}
        record.evidence = f"{arrived} of {written} written records in the sink"


def _wait_arrived(run: StepContext, written: int) -> int:
    """How many records the sink holds as [record] reads them: waited for until as many
    messages as records written are there (bounded), then counted."""
    deadline, count, messages = time.monotonic() + ARRIVE_WITHIN_S, 0, 0
    while True:
        try:
            read = list(run.sink_reader(run.live_exporter()).records())
            messages, count = len(read), sum(1 for r in read if r.record_id is not None)
        except (HarnessError, RedisError):
            messages = count = 0
        if count >= written or messages >= written or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


def _ready(exporter: ExporterProcess) -> dict[str, Any]:
    try:
        answer = exporter.http.get(exporter.target.ready_path, timeout=5)
    except httpx.HTTPError as exc:
        return {"status": None, "body": f"{exc.__class__.__name__}: {exc}"}
    return {"status": answer.status_code, "body": answer.text[:300]}


def _metrics(exporter: ExporterProcess) -> dict[str, Any]:
    """Each [metrics] role: the metric named, whether the scrape has it, and its total."""
    try:
        samples = exporter.metrics()
    except (MetricsUnavailable, httpx.HTTPError) as exc:
        return {"error": str(exc)}
    # A labelled counter nothing has counted yet has no sample, only its TYPE line: it exists.
    declared = {line.split()[2] for line in _scrape(exporter).splitlines() if line.startswith("# TYPE ")}
    found: dict[str, Any] = {}
    for role, name in exporter.target.metrics.items():
        present = name in declared or any(k == name or k.startswith(name + "{") for k in samples)
        found[role] = {"name": name, "present": present, "total": exporter.metric_total(role, samples)}
    found["names_scraped"] = sorted({k.split("{", 1)[0] for k in samples})[:60]
    return found


def _scrape(exporter: ExporterProcess) -> str:
    try:
        return exporter.http.get(exporter.target.metrics_path, timeout=5).text
    except httpx.HTTPError:
        return ""


def _log(exporter: ExporterProcess) -> dict[str, Any]:
    text = exporter.log_path.read_text(errors="replace") if exporter.log_path.exists() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    records = exporter.target.log.records(text)
    return {"lines": len(lines), "records": len(records), "first_lines": lines[:3],
            "levels": sorted({str(r.get("level")) for r in records})[:10]}


def _samples(run: StepContext) -> list[dict[str, Any]]:
    """The sink's first messages, raw and as [record] reads them (or why it cannot)."""
    shown = []
    # Read with the bundled shape, which keeps every message as it is: [record] reads each below.
    raw_reader = primary_sink(run.stack, run.live_exporter(), run.target.sinks, None, run.scenario.sink)
    try:
        for message in raw_reader.records():
            raw = message.raw or b""
            fmt = run.target.record
            fields = fmt.fields(raw)
            read: str | dict[str, Any]
            if isinstance(fields, NotARecord):
                read = "no row in it (a tombstone or a delete)"
            elif fields.record_id is None:
                read = f"no record id where [record] id = {fmt.id!r} says"
            else:
                read = {"id": fields.record_id, "payload": str(fields.payload)[:80]}
            shown.append({"message": raw[:300].decode(errors="replace"), "as_record": read})
            if len(shown) >= SAMPLES:
                break
    except (HarnessError, RedisError) as exc:
        shown.append({"message": "", "as_record": f"the sink cannot be read: {exc}"})
    return shown
