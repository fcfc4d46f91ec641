"""The bundled exporter's durability settings on real servers (issue 28).

- ``kafka_min_insync_replicas``: a topic that lets a leader alone acknowledge an acks=all write
  (``min.insync.replicas`` below the expectation) gets nothing: the records wait in the buffer,
  readiness names the topic and both numbers, and they all arrive once an exporter that expects
  no more starts.
- ``redis_wait_replicas``: the reader reads no further while its last append is on fewer Redis
  replicas than that (the replica's link cut), and goes on once it is back; and the seeded defect
  that loses rows after a failover to a lagging replica (``checkpoint_rewind_ignored``) loses
  none with the wait on, because the checkpoint a failover leaves is one the reader stood on.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from harness.infra.stack import Stack
from harness.infra.waiting import wait_for
from harness.judge.sinks import read_topic
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.rig.workload import SourceWriter

pytestmark = pytest.mark.faultline

Start = Callable[..., ExporterProcess]
FAST = {"EXPORTER_RETRY_MAX_BACKOFF_S": "0.3", "EXPORTER_POLL_INTERVAL_S": "0.05"}


def _rows(prefix: str, n: int) -> list[tuple[str, bytes]]:
    return [(f"{prefix}-{i % 7}", f"{prefix}-{i}".encode()) for i in range(n)]


def _delivered(ctx: RunContext) -> set[int]:
    return {r.record_id for r in read_topic(ctx.stack, ctx.topic) if r.record_id is not None}


def _retries(exporter: ExporterProcess, stage: str) -> float:
    return sum(v for k, v in exporter.metrics().items() if k.startswith("exporter_retries_total") and stage in k)


@pytest.mark.timeout(150)
def test_a_topic_that_lets_a_leader_acknowledge_alone_gets_nothing_until_nothing_more_is_expected(
        run_ctx: RunContext, writer: SourceWriter, start_exporter: Start) -> None:
    admin = AdminClient({"bootstrap.servers": run_ctx.stack.kafka_bootstrap(proxied=False)})
    topic = NewTopic(run_ctx.topic, 1, replication_factor=1, config={"min.insync.replicas": "1"})
    admin.create_topics([topic])[run_ctx.topic].result(30)
    written = {w.record_id for w in writer.insert(_rows("held", 50))}
    exporter = start_exporter(EXPORTER_KAFKA_MIN_INSYNC_REPLICAS="2", **FAST)
    wait_for(lambda: _retries(exporter, "sink.kafka.durability") >= 3, timeout=60,
             what="the deliverer to refuse the topic three times")
    ready = exporter.get("/readyz").json()
    assert ready["checks"]["kafka"]["ok"] is False, ready
    assert f"topic {run_ctx.topic} has min.insync.replicas=1, below the 2" in ready["checks"]["kafka"]["error"]
    assert _delivered(run_ctx) == set()  # refused three times over: not one record went there
    exporter.stop()
    relaxed = start_exporter(EXPORTER_KAFKA_MIN_INSYNC_REPLICAS="1", **FAST)
    wait_for(lambda: written <= _delivered(run_ctx), timeout=60, what="the held records delivered")
    assert relaxed.get("/readyz").json()["checks"]["kafka"]["ok"] is True


def _await_replica(stack: Stack) -> None:
    if stack.backend.name != "local":
        pytest.skip("only the local backend runs a Redis replica")
    stack.backend.start_replica("redis")  # returns once in sync


@pytest.mark.slow  # 10 s; the failover test below runs the wait in `nox -s tests`
@pytest.mark.timeout(150)
def test_the_reader_holds_while_its_append_is_on_no_replica_and_goes_on_when_it_is(
        fresh_stack: Stack, run_ctx: RunContext, writer: SourceWriter, start_exporter: Start) -> None:
    _await_replica(fresh_stack)
    exporter = start_exporter(EXPORTER_REDIS_WAIT_REPLICAS="1", EXPORTER_REDIS_WAIT_TIMEOUT_MS="200", **FAST)
    first = {w.record_id for w in writer.insert(_rows("a", 40))}
    wait_for(lambda: first <= _delivered(run_ctx), timeout=30, what="rows delivered while the replica follows")
    fresh_stack.backend.cut_replication("redis", True)
    writer.insert(_rows("b", 40))
    wait_for(lambda: _retries(exporter, "buffer.replicate") >= 3, timeout=30,
             what="the reader to find its append on no replica three times")
    later = {w.record_id for w in writer.insert(_rows("c", 40))}
    wait_for(lambda: _retries(exporter, "buffer.replicate") >= 6, timeout=30, what="three more refused waits")
    assert not later & _delivered(run_ctx)  # read no further than the one append the replica lacks
    fresh_stack.backend.cut_replication("redis", False)
    wait_for(lambda: later <= _delivered(run_ctx), timeout=60, what="the rows written while the reader held")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("wait", ["1", pytest.param("0", marks=pytest.mark.slow)])  # the contrast: slow
def test_with_the_wait_a_failover_to_a_lagging_replica_loses_nothing_even_with_the_rewind_defect(
        fresh_stack: Stack, run_ctx: RunContext, writer: SourceWriter, start_exporter: Start, wait: str) -> None:
    """``wait = "0"`` is the contrast: the same failover, the same defect, no wait: the reader
    never gets past the checkpoint that went back and what follows is never delivered."""
    _await_replica(fresh_stack)
    exporter = start_exporter(EXPORTER_REDIS_WAIT_REPLICAS=wait, EXPORTER_REDIS_WAIT_TIMEOUT_MS="200",
                              FAULTLINE_EXPORTER_DEFECT="checkpoint_rewind_ignored", **FAST)
    written = {w.record_id for w in writer.insert(_rows("a", 40))}
    wait_for(lambda: written <= _delivered(run_ctx), timeout=30, what="rows delivered before the cut")
    fresh_stack.backend.cut_replication("redis", True)
    behind = {w.record_id for w in writer.insert(_rows("b", 200))}
    if wait == "1":
        wait_for(lambda: _retries(exporter, "buffer.replicate") >= 1, timeout=30,
                 what="an append the replica lacks (the reader holding after it)")
    else:
        wait_for(lambda: behind <= _delivered(run_ctx), timeout=30, what="rows appended the replica lacks")
    evidence = fresh_stack.backend.fail_over("redis")
    assert evidence["gap_bytes"] > 0, evidence  # the replica promoted had missed an append
    after = {w.record_id for w in writer.insert(_rows("c", 40))}
    if wait == "0":
        wait_for(lambda: _retries(exporter, "buffer.append") >= 5, timeout=60,
                 what="the reader's appends refused over the checkpoint that went back")
        assert not after & _delivered(run_ctx)
        return
    written |= behind | after
    wait_for(lambda: written <= _delivered(run_ctx), timeout=90,
             what=f"every row after the failover ({len(written - _delivered(run_ctx))} missing)")
