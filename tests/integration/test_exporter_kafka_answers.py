"""The bundled exporter when Kafka answers single produce requests with errors (through the Kafka
protocol proxy on its link): a code the client does not retry, which librdkafka then also
raises from produce() for a while, and an out-of-order sequence, which leaves an idempotent
producer in a fatal state. Neither may crash a worker, and every record arrives. Both crashed
the deliverer before the fix (found by kafka_produce_errors: "worker process exited")."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from harness.infra.proxies.base import Trigger
from harness.infra.proxies.kafka import KafkaProxy, PartitionErrorRule
from harness.infra.stack import Stack
from harness.infra.waiting import wait_for
from harness.judge.sinks import read_topic
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.rig.workload import SourceWriter

pytestmark = pytest.mark.faultline

Start = Callable[..., ExporterProcess]


@pytest.fixture
def kafka_proxy(fresh_stack: Stack, run_ctx: RunContext) -> Iterator[KafkaProxy]:
    admin = AdminClient({"bootstrap.servers": fresh_stack.kafka_bootstrap(proxied=False)})
    admin.create_topics([NewTopic(run_ctx.topic, num_partitions=3, replication_factor=1)])[run_ctx.topic].result(30)
    link = fresh_stack.proxy("kafka")
    original = link.upstream
    host, _, port = original.rpartition(":")
    proxy = KafkaProxy((host, int(port))).start()
    link.set_upstream(proxy.address)
    yield proxy
    link.set_upstream(original)
    proxy.close()


def _rows(prefix: str, n: int, keys: int = 24) -> list[tuple[str, bytes]]:
    return [(f"{prefix}-{i % keys}", f"{prefix}-{i}".encode()) for i in range(n)]


def _delivered(ctx: RunContext) -> set[int]:
    return {r.record_id for r in read_topic(ctx.stack, ctx.topic) if r.record_id is not None}


def _restarts(exporter: ExporterProcess) -> float:
    return sum(v for k, v in exporter.metrics().items() if k.startswith("exporter_worker_restarts_total"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("code", "times"), [("TOPIC_AUTHORIZATION_FAILED", 0), ("OUT_OF_ORDER_SEQUENCE_NUMBER", 1)])
def test_a_refused_produce_never_crashes_a_worker_and_every_record_arrives(
        run_ctx: RunContext, writer: SourceWriter, start_exporter: Start, kafka_proxy: KafkaProxy, code: str,
        times: int) -> None:
    first = {w.record_id for w in writer.insert(_rows("a", 60))}
    exporter = start_exporter(EXPORTER_RETRY_MAX_BACKOFF_S="0.5")
    wait_for(lambda: first <= _delivered(run_ctx), timeout=30, what="the first rows delivered")
    number = kafka_proxy.add_rule(PartitionErrorRule(code, topic=run_ctx.topic, partition=0,
                                                     trigger=Trigger(times=times)))
    later = {w.record_id for w in writer.insert(_rows("b", 300))}
    wait_for(lambda: kafka_proxy.injections(number), timeout=30, what=f"a produce answered {code}")
    if times == 0:
        wait_for(lambda: exporter.metric_total("send_failures") >= 3, timeout=30,
                 what="the refused sends to be counted")
        kafka_proxy.remove_rule(number)
    wait_for(lambda: later <= _delivered(run_ctx), timeout=60, what="the rows written while Kafka refused")
    assert exporter.running()
    assert _restarts(exporter) == 0, [r for r in exporter.log_records() if r.get("msg", "").startswith("worker")]
    log = exporter.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def _inversions(records: list, key_of: dict[int, str]) -> list[str]:  # noqa: ANN001 - SinkRecord
    """Records that reached a partition after a later record of their key in the same partition
    (as the judge's key_order sees it; a duplicate sent again later is not one: only a record's
    first arrival counts)."""
    seen: set[int] = set()
    latest: dict[tuple[str, str], int] = {}
    found = []
    for record in sorted(records, key=lambda r: (r.stream, r.position)):
        rid = record.record_id
        if rid is None or rid in seen or rid not in key_of:
            continue
        seen.add(rid)
        key = (record.stream, key_of[rid])
        if rid < latest.get(key, -1):
            found.append(f"{rid} after {latest[key]} ({key})")
        latest[key] = max(latest.get(key, -1), rid)
    return found


@pytest.mark.timeout(120)
def test_a_key_keeps_its_order_when_some_of_its_partition_s_batches_are_refused_for_good(
        run_ctx: RunContext, writer: SourceWriter, start_exporter: Start, kafka_proxy: KafkaProxy) -> None:
    exporter = start_exporter(EXPORTER_RETRY_MAX_BACKOFF_S="0.5")
    written = writer.insert(_rows("w", 30, keys=2))
    wait_for(lambda: {w.record_id for w in written} <= _delivered(run_ctx), timeout=30, what="the first rows")
    # Half of partition 0's requests refused for good, for a while: a refused batch followed by a
    # written one of the same partition would let later records of a key overtake earlier ones.
    number = kafka_proxy.add_rule(PartitionErrorRule("TOPIC_AUTHORIZATION_FAILED", topic=run_ctx.topic, partition=0,
                                                     trigger=Trigger(times=0, probability=0.5, seed=3)))
    for _round in range(8):
        written += writer.insert(_rows("x", 40, keys=2))  # two keys: every partition holds runs of each
        wait_for(lambda: kafka_proxy.injections(number) or exporter.metric_total("delivered") > 0, timeout=10,
                 what="the exporter to be sending")
    wait_for(lambda: kafka_proxy.injections(number), timeout=30, what="a refused batch")
    kafka_proxy.remove_rule(number)
    ids = {w.record_id for w in written}
    wait_for(lambda: ids <= _delivered(run_ctx), timeout=60, what="every row delivered")
    key_of = {w.record_id: w.key for w in written if w.record_id is not None}
    assert _inversions(read_topic(run_ctx.stack, run_ctx.topic), key_of) == []
