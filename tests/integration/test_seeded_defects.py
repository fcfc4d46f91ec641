"""Each seeded defect is a real bug: the same procedure that the clean exporter survives loses,
corrupts or hangs with the defect on. (The scenarios that catch them by verdict are issue 5's.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from harness.infra.waiting import wait_for
from harness.judge.sinks import read_dead_letters, read_topic
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.rig.workload import SourceWriter

pytestmark = pytest.mark.faultline
Start = Callable[..., ExporterProcess]
CLEAN = ""


def rows(prefix: str, n: int, size: int = 120) -> list[tuple[str, bytes]]:
    return [(f"{prefix}-{i}", (f"{prefix}-{i}:".encode() + b"r" * size)[:size]) for i in range(n)]


def missing_from_topic(ctx: RunContext, ids: set[int]) -> set[int]:
    return ids - {r.record_id for r in read_topic(ctx.stack, ctx.topic)}


def idle(exporter: ExporterProcess) -> bool:
    status = exporter.get("/status").json()
    return status.get("buffer_length") == 0 and status.get("pending") == 0


@pytest.mark.parametrize("defect", [CLEAN, "ack_before_send", "ignore_send_errors"])
def test_kafka_outage_during_delivery(run_ctx: RunContext, writer: SourceWriter, start_exporter: Start,
                                      defect: str) -> None:
    exporter = start_exporter(FAULTLINE_EXPORTER_DEFECT=defect, EXPORTER_KAFKA_MESSAGE_TIMEOUT_MS="1500")
    kafka = run_ctx.stack.proxy("kafka")
    kafka.disable()
    ids = {w.record_id for w in writer.insert(rows("o", 300))}
    # Clean: sends fail and are counted. Defective: the records are taken as delivered.
    wait_for(lambda: exporter.metric_total("send_failures") > 0 or exporter.metric_total("delivered") >= 300,
             timeout=30, what="the outage to be felt by the sender")
    kafka.enable()
    wait_for(lambda: exporter.metric_total("delivered") >= 300 and idle(exporter), timeout=60,
             what="the exporter to report everything delivered")
    lost = missing_from_topic(run_ctx, ids)
    if defect == CLEAN:
        assert lost == set()
    else:
        assert lost, f"{defect}: the outage should have lost records"


@pytest.mark.parametrize("defect", [CLEAN, "read_past_open_transactions"])
def test_commits_out_of_id_order(run_ctx: RunContext, writer: SourceWriter, start_exporter: Start,
                                 defect: str) -> None:
    exporter = start_exporter(FAULTLINE_EXPORTER_DEFECT=defect, EXPORTER_POLL_INTERVAL_S="0.05")
    first = {w.record_id for w in writer.insert(rows("first", 20))}
    wait_for(lambda: not missing_from_topic(run_ctx, first), timeout=60,  # type: ignore[arg-type]
             what="the pipeline to deliver its first rows")
    with writer.begin(rows("held", 5)) as held:
        later = {w.record_id for w in writer.insert(rows("later", 50))}

        def reader_reached_later_rows() -> bool:  # the bug: delivered past the gap; clean: says it waits
            waiting = any(r.get("msg", "").startswith("waiting for older open transactions")
                          for r in exporter.log_records())
            return waiting or not missing_from_topic(run_ctx, later)

        wait_for(reader_reached_later_rows, timeout=30, interval=0.1, what="the reader to reach the later rows")
        held_ids = {w.record_id for w in held.commit()}
    # A marker committed after everything: once it is delivered, the reader has read past every
    # lower id it will ever read (it reads in id order).
    marker = {w.record_id for w in writer.insert(rows("marker", 1))}
    wait_for(lambda: not missing_from_topic(run_ctx, marker | later), timeout=30, what="the marker to be delivered")
    lost = missing_from_topic(run_ctx, held_ids)  # type: ignore[arg-type]
    if defect == CLEAN:
        assert lost == set()
    else:
        assert lost == held_ids, f"{defect}: the held rows should have been skipped"


@pytest.mark.parametrize("defect", [CLEAN, "checkpoint_before_buffer"])
def test_buffer_append_cut_short(run_ctx: RunContext, writer: SourceWriter, start_exporter: Start,
                                 defect: str) -> None:
    redis_link = run_ctx.stack.proxy("redis")
    # Every new Redis connection may send 3000 bytes: a checkpoint fits, a 100-row append does not.
    redis_link.add_toxic("limit_data", stream="upstream", bytes=3000)
    exporter = start_exporter(FAULTLINE_EXPORTER_DEFECT=defect, EXPORTER_BATCH_SIZE="100")
    ids = {w.record_id for w in writer.insert(rows("c", 500))}
    wait_for(lambda: _retries(exporter) > 3, timeout=30,
             what="appends to fail and be retried")
    run_ctx.stack.reset()
    wait_for(lambda: idle(exporter) and exporter.get("/status").json()["checkpoint"] == max(ids), timeout=60,
             what="the reader to reach the last row and the buffer to drain")
    lost = missing_from_topic(run_ctx, ids)
    assert (lost == set()) == (defect == CLEAN), f"defect={defect!r} lost {len(lost)}"


def _retries(exporter: ExporterProcess) -> float:
    return sum(v for k, v in exporter.metrics().items() if k.startswith("exporter_retries_total{"))


@pytest.mark.parametrize("defect", [CLEAN, "pause_check_after_work"])
def test_pause_while_redis_is_down(run_ctx: RunContext, writer: SourceWriter, start_exporter: Start,
                                   defect: str) -> None:
    exporter = start_exporter(FAULTLINE_EXPORTER_DEFECT=defect)
    writer.insert(rows("p", 50))
    wait_for(lambda: exporter.metric_total("delivered") >= 50, timeout=30, what="first delivery")
    run_ctx.stack.proxy("redis").disable()
    grace = 1.0
    try:
        reply = exporter.post("/pause", params={"grace": grace}, timeout=grace + 4)
        finished = reply.json()["state"] == "paused"
    except httpx.ReadTimeout:
        finished = False
    assert finished == (defect == CLEAN)


@pytest.mark.parametrize("defect", [CLEAN, "fatal_on_timeout"])
def test_timeout_on_the_background_metadata_poll(run_ctx: RunContext, writer: SourceWriter, start_exporter: Start,
                                                 defect: str) -> None:
    exporter = start_exporter(FAULTLINE_EXPORTER_DEFECT=defect, EXPORTER_POSTGRES_TIMEOUT_S="1",
                              EXPORTER_METADATA_POLL_INTERVAL_S="0.3")
    run_ctx.stack.proxy("postgres").add_toxic("timeout", timeout=0)
    if defect == CLEAN:
        wait_for(lambda: exporter.metric_total("background_failures") >= 2, timeout=20,
                 what="skipped metadata passes to be counted")
        assert exporter.running()
        warnings = [r for r in exporter.log_records() if r.get("msg") == "metadata poll failed; skipping this pass"]
        assert warnings and all(r["level"] == "warning" for r in warnings)
    else:
        wait_for(lambda: not exporter.running(), timeout=20, what="the defective exporter to exit")
        assert exporter.exit_code() == 70


@pytest.mark.parametrize("defect", [CLEAN, "lossy_encoding"])
def test_gbk_export_of_unencodable_rows(run_ctx: RunContext, writer: SourceWriter, start_exporter: Start,
                                        defect: str) -> None:
    writer.insert([("ok", "中文".encode()), ("bad", "emoji 😀".encode())])
    exporter = start_exporter(FAULTLINE_EXPORTER_DEFECT=defect)
    job = exporter.post("/exports", json={"encoding": "gbk",
                                          "destination": {"kind": "file", "name": "e.jsonl"}}).json()
    wait_for(lambda: exporter.get(f"/exports/{job['id']}").json()["state"] == "completed", timeout=30,
             what="the export job")
    text = (Path(exporter.sink("export_dir")) / "faultline" / "e.jsonl").read_bytes().decode("gbk")
    letters = read_dead_letters(run_ctx.stack, exporter.sink("dead_letter_stream"))
    if defect == CLEAN:
        assert "?" not in text and len(letters) == 1
    else:
        assert "emoji ?" in text and letters == []  # silently replaced: what the gate must catch


@pytest.mark.parametrize("defect", [CLEAN, "ignore_enospc"])
def test_disk_full_during_export(run_ctx: RunContext, writer: SourceWriter, start_exporter: Start,
                                 tiny_export_dir: Path, defect: str) -> None:
    writer.insert(rows("d", 1500, size=200))
    exporter = start_exporter(FAULTLINE_EXPORTER_DEFECT=defect, EXPORTER_DISK_USAGE_THRESHOLD="1.0")
    job = exporter.post("/exports", json={"destination": {"kind": "file", "name": "d.jsonl"}}).json()
    done = wait_for(lambda: (j := exporter.get(f"/exports/{job['id']}").json())["state"] in ("completed", "failed")
                    and j, timeout=30, what="the export job")
    if defect == CLEAN:
        assert done["state"] == "failed" and [f for _d, _s, files in os.walk(tiny_export_dir) for f in files] == []
    else:
        written = Path(done["path"]).read_bytes().count(b"\n")
        assert done["state"] == "completed" and written < done["rows_written"]  # success claimed, rows gone


@pytest.mark.timeout(180)
@pytest.mark.parametrize("defect", [CLEAN, "too_large_batch_dead_lettered"])
def test_records_dead_lettered_though_deliverable_fail_the_gate(run_scenario, defect: str) -> None:  # noqa: ANN001
    from harness.catalogue.registry import discover

    result = run_scenario(discover()["kafka_topic_limit_lowered"], extra_env={"FAULTLINE_EXPORTER_DEFECT": defect}
                          if defect else None)
    assert result.ledger is not None
    if defect == CLEAN:
        assert result.verdict == "pass", [c.detail for c in result.violations]
        assert result.ledger.letters_verified >= 1 and not result.ledger.misrouted_samples
    else:
        assert result.verdict == "fail"
        no_loss = next(c for c in result.checks if c.name == "no_loss")
        assert not no_loss.ok and "dead-lettered though deliverable" in no_loss.detail
        assert result.ledger.count("dead_lettered_deliverable") > 0
