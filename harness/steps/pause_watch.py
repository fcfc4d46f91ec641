"""Watching a pause from outside: how far the pipeline had got when the pause was acknowledged,
and how far when it was ended (the sink's ends, and the exporter's statements on its source
table by Postgres's counters). The ``pause_honoured`` check compares the two, with what the
buffer tap saw appended in between (harness.checks.pauses); a pause is honoured when nothing
moved, not when the call answered fast.

The marks read the servers directly (a sink's end offsets, a Redis stream's length, a file's lines) and the exporter's
own account of its pause, so a fault on the exporter's links does not blind them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
from confluent_kafka import KafkaException
from redis.exceptions import RedisError

from harness.errors import HarnessError
from harness.report.journal import FlowMark, PauseObservation
from harness.rig.source_reads import source_statements

if TYPE_CHECKING:
    from harness.steps.context import StepContext


def flow_mark(run: StepContext) -> FlowMark:
    exporter = run.live_exporter()
    wall = time.time()
    try:
        ends = run.sink_reader(exporter).ends()
    except (KafkaException, OSError, RedisError) as exc:
        raise HarnessError(f"scenario {run.scenario.name}: the sink's end could not be read to watch a pause: "
                           f"{exc.__class__.__name__}: {exc}") from exc
    source = source_statements(run.stack, run.ctx.source_table) if run.target.source_reads == "statements" else None
    return FlowMark(wall, ends, exporter.starts, source)


def acknowledged(run: StepContext, pause: PauseObservation) -> None:
    """The pause was acknowledged: mark where the pipeline stood, and what it had in hand."""
    pause.at_ack = flow_mark(run)
    pause.pending_at_ack = len(run.buffer_evidence().pending) if run.tap is not None else 0
    run.observed.pauses.append(pause)


def end_open_pauses(run: StepContext, how: str) -> None:
    """Just before a resume is asked (or healing begins): mark the end of every pause in force."""
    open_pauses = [p for p in run.observed.pauses if p.open]
    if not open_pauses:
        return
    mark = flow_mark(run)
    state = pause_state(run)
    for pause in open_pauses:
        pause.at_end, pause.state_at_end, pause.ended_by = mark, state, how


def pause_state(run: StepContext) -> str:
    """What the exporter says of its pause now: the bundled protocol's state (GET pause_path), or
    the connector's and its tasks' states (Connect's status path)."""
    exporter = run.live_exporter()
    protocol = run.target.pause_protocol
    path = run.target.status_path if protocol == "connect" else run.target.pause_path
    try:
        reply = exporter.get(path, timeout=5)
        body: Any = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"unknown ({exc.__class__.__name__}: {str(exc)[:120]})"
    if not isinstance(body, dict):
        return f"unknown (answered {reply.status_code}: {str(body)[:120]})"
    if protocol == "connect":
        states = {str(body.get("connector", {}).get("state"))} | {str(t.get("state")) for t in body.get("tasks", [])}
        return "paused" if states == {"PAUSED"} else "/".join(sorted(states)).lower()
    return str(body.get("state"))
