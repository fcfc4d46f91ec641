"""What a protocol proxy adds to each request, side by side with Toxiproxy, in one run.

A Redis PING round trip, with a client that keeps its connection, measured three ways on one
stack: straight to Redis, through Toxiproxy's link (no toxics), and through Toxiproxy then the
RESP proxy (no rules), the chain a scenario with a protocol fault runs on. Also a pipeline of
1,000 XADDs, where the proxy decodes every command. And a Kafka produce round trip (one record,
produced and flushed by an idempotent producer with acks=all) through Toxiproxy, then through
Toxiproxy and the Kafka proxy (a client cannot go straight to the broker: it advertises
Toxiproxy's address), with no rule and with a partition rule in force that never fires (the
proxy then decodes and re-encodes nothing but reads every produce request's partitions). Figures
are medians of rounds; the targets are ratios to Toxiproxy's own figure, so a slower machine
moves both sides.

Target on the 2-core reference machine: the proxy adds at most Toxiproxy's own latency again
(Toxiproxy + proxy at most 2.5x Toxiproxy alone per PING; at most 3x per pipeline; at most 1.5x
per Kafka produce, whose round trip is mostly the broker's).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.backends.local import LocalBackend
from harness.infra.proxies.kafka import KafkaProxy, PartitionErrorRule
from harness.infra.proxies.resp import RespProxy
from harness.infra.stack import Stack
from harness.report.figures import Figure

ROUNDS = 7
PINGS = 2_000
PIPELINE = 1_000
TARGET_PING_RATIO = 2.5
TARGET_PIPELINE_RATIO = 3.0
PRODUCES = 200
TARGET_PRODUCE_RATIO = 1.5


def _client(port: int, password: str) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, password=password, retry=Retry(NoBackoff(), 0))


def _per_ping_us(client: redis.Redis) -> float:
    t0 = time.perf_counter()
    for _ in range(PINGS):
        client.ping()
    return (time.perf_counter() - t0) / PINGS * 1e6


def _pipeline_ms(client: redis.Redis) -> float:
    pipe = client.pipeline(transaction=False)
    for n in range(PIPELINE):
        pipe.xadd("bench-proxies", {"n": n})
    t0 = time.perf_counter()
    pipe.execute()
    elapsed = (time.perf_counter() - t0) * 1000
    client.delete("bench-proxies")
    return elapsed


def _medians(clients: dict[str, redis.Redis], measure: Callable[[redis.Redis], float]) -> dict[str, float]:
    rounds: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(ROUNDS):
        for name, client in clients.items():  # interleaved: a busy moment hits every path alike
            rounds[name].append(measure(client))
    return {name: round(statistics.median(values), 2) for name, values in rounds.items()}


def _per_produce_ms(stack: Stack) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap(), "acks": "all", "enable.idempotence": True,
                         "linger.ms": 0})
    producer.produce("bench-proxies", b"warm-up")
    producer.flush(30)  # metadata, producer id and connections before the clock starts
    t0 = time.perf_counter()
    for n in range(PRODUCES):
        producer.produce("bench-proxies", str(n).encode())
        if producer.flush(30):
            raise RuntimeError("kafka: a produce was not answered within 30 s")
    return (time.perf_counter() - t0) / PRODUCES * 1000


def _kafka(stack: Stack) -> dict[str, float]:
    """Produce round trips through Toxiproxy alone, then with the Kafka proxy behind it."""
    link = stack.proxy("kafka")
    original = link.upstream
    host, _, port = original.rpartition(":")
    proxy = KafkaProxy((host, int(port))).start()
    rounds: dict[str, list[float]] = {"toxiproxy": [], "toxiproxy+kafka_proxy": [],
                                      "toxiproxy+kafka_proxy, idle rule": []}
    try:
        for _ in range(ROUNDS):  # alternated: a busy moment hits every path alike
            link.set_upstream(original)
            rounds["toxiproxy"].append(_per_produce_ms(stack))
            link.set_upstream(proxy.address)
            rounds["toxiproxy+kafka_proxy"].append(_per_produce_ms(stack))
            number = proxy.add_rule(PartitionErrorRule("NOT_LEADER_OR_FOLLOWER", topic="never-produced-to"))
            rounds["toxiproxy+kafka_proxy, idle rule"].append(_per_produce_ms(stack))
            proxy.remove_rule(number)
    finally:
        link.set_upstream(original)
        proxy.close()
    return {name: round(statistics.median(values), 3) for name, values in rounds.items()}


def run() -> dict:
    backend = LocalBackend()
    stack = backend.start()
    direct = stack.redis.endpoint(proxied=False)
    proxy = RespProxy((direct.host, direct.port)).start()
    link = stack.proxy("redis")
    original = link.upstream
    try:
        through_toxiproxy = stack.redis.endpoint(proxied=True)
        clients = {"direct": _client(direct.port, stack.redis_password),
                   "toxiproxy": _client(through_toxiproxy.port, stack.redis_password)}
        pings = _medians(clients, _per_ping_us)
        pipelines = _medians(clients, _pipeline_ms)
        link.set_upstream(proxy.address)  # the chain a protocol fault runs on
        chained = {"toxiproxy+resp_proxy": _client(through_toxiproxy.port, stack.redis_password)}
        pings |= _medians(chained, _per_ping_us)
        pipelines |= _medians(chained, _pipeline_ms)
        link.set_upstream(original)
        produces = _kafka(stack)
    finally:
        link.set_upstream(original)
        proxy.close()
        backend.stop()
    ping_ratio = pings["toxiproxy+resp_proxy"] / pings["toxiproxy"]
    pipeline_ratio = pipelines["toxiproxy+resp_proxy"] / pipelines["toxiproxy"]
    produce_ratio = max(produces["toxiproxy+kafka_proxy"], produces["toxiproxy+kafka_proxy, idle rule"]) \
        / produces["toxiproxy"]
    return {
        "figures": [Figure("Redis PING through Toxiproxy and the RESP proxy, over Toxiproxy's alone", "x",
                           (round(ping_ratio, 3),), "lower", TARGET_PING_RATIO),
                    Figure("1,000 pipelined XADDs through both, over Toxiproxy's alone", "x",
                           (round(pipeline_ratio, 3),), "lower", TARGET_PIPELINE_RATIO),
                    Figure("a Kafka produce through Toxiproxy and the Kafka proxy, over Toxiproxy's alone", "x",
                           (round(produce_ratio, 3),), "lower", TARGET_PRODUCE_RATIO)],
        "ping_round_trip_us": pings,
        "pipeline_of_1000_xadd_ms": pipelines,
        "proxy_adds_per_ping_us": round(pings["toxiproxy+resp_proxy"] - pings["toxiproxy"], 1),
        "toxiproxy_adds_per_ping_us": round(pings["toxiproxy"] - pings["direct"], 1),
        "ping_ratio_to_toxiproxy": round(ping_ratio, 3),
        "pipeline_ratio_to_toxiproxy": round(pipeline_ratio, 3),
        "ping_ratio_to_target": round(ping_ratio / TARGET_PING_RATIO, 3),
        "pipeline_ratio_to_target": round(pipeline_ratio / TARGET_PIPELINE_RATIO, 3),
        "kafka_produce_round_trip_ms": produces,
        "produce_ratio_to_toxiproxy": round(produce_ratio, 3),
        "produce_ratio_to_target": round(produce_ratio / TARGET_PRODUCE_RATIO, 3),
        "meets_targets": (ping_ratio <= TARGET_PING_RATIO and pipeline_ratio <= TARGET_PIPELINE_RATIO
                          and produce_ratio <= TARGET_PRODUCE_RATIO),
    }
