"""Every service fault on the real servers: while it is on, a client with the exporter's own
credentials, straight to the server, is refused (the harness's administrator is not); after
the step is removed, service is normal again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from confluent_kafka import KafkaError, Producer

from harness.infra.redis_client import direct_client
from harness.infra.stack import Stack
from harness.infra.waiting import wait_for
from harness.model.target import TargetDefinition
from harness.play.run import Run
from harness.report.journal import StepRecord
from harness.scenario import (
    KafkaAddPartitions,
    KafkaQuota,
    KafkaTopicSetting,
    LinkFlap,
    PostgresConnectionLimit,
    PostgresLockTable,
    PostgresReadOnly,
    PostgresStatementTimeout,
    PostgresTerminateSessions,
    RedisClientPause,
    RedisDenyCommands,
    RedisRefuseConnections,
    RedisRefuseWrites,
    Scenario,
    ServiceMoves,
    StepKind,
)
from harness.steps.kafka_faults import ensure_topic

pytestmark = pytest.mark.faultline


@pytest.fixture
def run(fresh_stack: Stack, tmp_path: Path) -> Iterator[Run]:
    made = Run(fresh_stack, TargetDefinition.load(), Scenario(name="service_faults", description="d"), tmp_path)
    made.writer.create()
    made.writer.insert([("k-1", b"payload")])
    yield made
    while made.closers:
        made.closers.pop()()
    fresh_stack.reset()


Apply = Callable[[StepKind], tuple[StepRecord, Any]]


@pytest.fixture
def apply(run: Run) -> Apply:
    def do(step: StepKind) -> tuple[StepRecord, Any]:
        record = StepRecord("during", step.describe(), applied_at=0.0, window_s=5.0)
        return record, step.apply(run, record)
    return do


def exporter_redis(run: Run, timeout: float = 2.0) -> redis.Redis:
    return direct_client(run.stack.exporter_redis_url(proxied=False), timeout=timeout)


def admin_redis(run: Run) -> redis.Redis:
    return direct_client(run.stack.redis_url(proxied=False), timeout=2.0)


def refusal(action: Callable[[], object]) -> str:
    try:
        action()
    except (redis.RedisError, psycopg.Error) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return "accepted"


# -- Redis -----------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("reason", "refused"), [("oom", "OutOfMemoryError"), ("noreplicas", "NOREPLICAS"),
                                                 ("readonly", "ReadOnlyError"), ("misconf", "MISCONF")])
def test_redis_refuses_writes_while_on_and_accepts_them_after(run: Run, apply: Apply, reason: str,
                                                              refused: str) -> None:
    client, key = exporter_redis(run), f"{run.ctx.namespace}:{reason}"
    step = RedisRefuseWrites(reason)  # type: ignore[arg-type]
    record, handle = apply(step)
    assert refused in refusal(lambda: client.set(key, "v")) and refused in record.evidence
    assert client.get(key) is None  # reads still answered
    step.remove(run, handle, record)
    assert client.set(key, "v") is True and "after: OK" in record.evidence


@pytest.mark.timeout(60)
def test_redis_denies_commands_to_the_exporter_only(run: Run, apply: Apply) -> None:
    client, admin = exporter_redis(run), admin_redis(run)
    step = RedisDenyCommands(("xadd", "xreadgroup"))
    record, handle = apply(step)
    assert "NoPermissionError" in refusal(lambda: client.xadd("s", {"a": "1"}))
    assert admin.xadd("s", {"a": "1"})  # the harness is not blinded
    assert "-xadd" in record.evidence
    step.remove(run, handle, record)
    assert client.xadd("s", {"a": "2"})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["write", "all"])
def test_redis_client_pause_stalls_writes_and_ends(run: Run, apply: Apply, mode: str) -> None:
    """``all`` failed before its fix: CLIENT UNPAUSE is itself held during an ALL pause (Redis 7.0)."""
    client = exporter_redis(run, timeout=0.5)
    step = RedisClientPause(mode)  # type: ignore[arg-type]
    record, handle = apply(step)
    assert "TimeoutError" in refusal(lambda: client.set("k", "v"))
    assert "no answer" in record.evidence
    step.remove(run, handle, record)
    fresh = exporter_redis(run)
    assert fresh.set("k", "v") is True


# -- Postgres ---------------------------------------------------------------------------------------
def exporter_query(run: Run, query: str, lock_timeout_ms: int = 500) -> str:
    def go() -> None:
        with psycopg.connect(run.stack.exporter_postgres_dsn(proxied=False), connect_timeout=3,
                             options=f"-c lock_timeout={lock_timeout_ms}") as conn:
            conn.execute(query)  # type: ignore[arg-type]
    return refusal(go)


@pytest.mark.timeout(60)
def test_postgres_table_lock_blocks_the_exporters_reads_until_released(run: Run, apply: Apply) -> None:
    read = f"SELECT count(*) FROM {run.ctx.source_table}"
    step = PostgresLockTable("ACCESS EXCLUSIVE")
    record, handle = apply(step)
    assert "LockNotAvailable" in exporter_query(run, read) and "AccessExclusiveLock" in record.evidence
    step.remove(run, handle, record)
    assert exporter_query(run, read) == "accepted"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("step", "query", "refused"), [
    (PostgresConnectionLimit(0), "SELECT 1", "too many connections for role"),
    (PostgresReadOnly(), "CREATE TEMP TABLE t (x int)", "ReadOnlySqlTransaction"),
    (PostgresStatementTimeout(50), "SELECT pg_sleep(0.5)", "QueryCanceled"),
])
def test_postgres_role_faults_refuse_the_exporter_and_not_the_harness(run: Run, apply: Apply, step: StepKind,
                                                                    query: str, refused: str) -> None:
    record, handle = apply(step)
    assert refused in exporter_query(run, query), record.evidence
    assert refused in record.evidence or "ok" not in record.evidence.split("gets: ")[-1]
    with psycopg.connect(run.stack.postgres_dsn(proxied=False), connect_timeout=3) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the harness's own role is untouched
    step.remove(run, handle, record)
    assert exporter_query(run, query) == "accepted"


@pytest.mark.timeout(60)
def test_postgres_terminates_the_exporters_sessions_again_and_again(run: Run, apply: Apply) -> None:
    conn = psycopg.connect(run.stack.exporter_postgres_dsn(proxied=False), autocommit=True)
    step = PostgresTerminateSessions(every_s=0.2)
    record, handle = apply(step)
    assert "SELECT" not in refusal(lambda: conn.execute("SELECT 1"))
    assert conn.closed or "terminat" in refusal(lambda: conn.execute("SELECT 1")).lower()
    second = psycopg.connect(run.stack.exporter_postgres_dsn(proxied=False), autocommit=True)
    wait_for(lambda: "accepted" != refusal(lambda: second.execute("SELECT 1")), timeout=5, interval=0.05,
             what="a new exporter session to be ended too")
    step.remove(run, handle, record)
    assert "round(s)" in record.evidence
    with psycopg.connect(run.stack.exporter_postgres_dsn(proxied=False)) as third:
        assert third.execute("SELECT 1").fetchone() == (1,)


# -- Kafka --------------------------------------------------------------------------------------------
def produce(run: Run, size: int, timeout: float = 15) -> KafkaError | None:
    producer = Producer({"bootstrap.servers": run.stack.kafka_bootstrap(proxied=False), "linger.ms": 0,
                         "message.timeout.ms": int(timeout * 1000)})
    reports: list[KafkaError | None] = []
    producer.produce(run.sink("kafka_topic"), b"x" * size, on_delivery=lambda err, _msg: reports.append(err))
    producer.flush(timeout + 5)
    assert reports, "no delivery report"
    return reports[0]


@pytest.mark.timeout(90)
def test_kafka_topic_setting_refuses_large_records_and_is_restored(run: Run, apply: Apply) -> None:
    step = KafkaTopicSetting("max.message.bytes", "2000")
    record, handle = apply(step)
    assert "-> 2000" in record.evidence
    err = produce(run, 5000)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert produce(run, 100) is None
    step.remove(run, handle, record)
    assert produce(run, 5000) is None


@pytest.mark.timeout(90)
def test_kafka_partitions_are_added(run: Run, apply: Apply) -> None:
    ensure_topic(run)
    record, _handle = apply(KafkaAddPartitions(3))
    assert "has 3 partitions" in record.evidence
    assert produce(run, 100) is None


# -- intermittent links ---------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_flapping_link_goes_down_and_up_and_ends_up(run: Run, apply: Apply) -> None:
    proxied = direct_client(run.stack.redis_url(proxied=True), timeout=0.3)
    seen: set[bool] = set()

    def both() -> bool:
        try:
            seen.add(bool(proxied.ping()))
        except redis.RedisError:
            seen.add(False)
        return seen == {True, False}

    step = LinkFlap("redis", down_s=0.3, up_s=0.3)
    record, handle = apply(step)
    wait_for(both, timeout=10, interval=0.05, what="the flapping link to be seen down and up")
    step.remove(run, handle, record)
    assert "went down" in record.evidence and "enabled=True" in record.evidence
    assert direct_client(run.stack.redis_url(proxied=True), timeout=2).ping() is True


@pytest.mark.timeout(60)
def test_redis_refuses_the_first_logins_then_lets_the_exporter_in(run: Run, apply: Apply) -> None:
    def login() -> str:
        client = exporter_redis(run)
        try:
            return refusal(client.ping)
        finally:
            client.close()

    step = RedisRefuseConnections(count=3)
    record, handle = apply(step)
    outcomes = [login() for _ in range(6)]
    assert "WRONGPASS" in record.evidence or "AuthenticationError" in record.evidence
    assert any("AuthenticationError" in o for o in outcomes[:3]), outcomes
    wait_for(lambda: login() == "accepted", timeout=5, interval=0.1, what="logins to be let in after the first ones")
    step.remove(run, handle, record)
    assert "login(s) refused before it was enabled again" in record.evidence and login() == "accepted"


@pytest.mark.timeout(120)
def test_kafka_comes_back_on_a_new_port_with_the_proxy_following(run: Run, apply: Apply) -> None:
    ensure_topic(run)
    old_direct = run.stack.kafka.direct.address
    step = ServiceMoves("kafka")
    record, handle = apply(step)
    assert "stopped" in record.evidence
    assert produce(run, 100, timeout=2) is not None  # nobody answers while it is away
    step.remove(run, handle, record)
    assert run.stack.kafka.direct.address != old_direct
    assert run.stack.proxy("kafka").upstream.endswith(f":{run.stack.backend.servers['kafka'].port}")  # type: ignore[attr-defined]
    assert produce(run, 100) is None  # through the new direct address
    proxied = Producer({"bootstrap.servers": run.stack.kafka_bootstrap(proxied=True), "linger.ms": 0})
    reports: list[KafkaError | None] = []
    proxied.produce(run.sink("kafka_topic"), b"via the proxy", on_delivery=lambda err, _msg: reports.append(err))
    proxied.flush(30)
    assert reports == [None]  # and through the proxy, which follows it


@pytest.mark.timeout(120)
def test_kafka_quota_throttles_the_exporters_client_id_only(run: Run, apply: Apply) -> None:
    ensure_topic(run)

    def throttled_ms(client_id: str, expected: bool) -> int:
        """The throttle the broker reports back for a 300 kB burst (its throttle_cb), in ms. Reports
        arrive with responses and are handed over by poll: when one is expected it is polled for
        (a deadline, not one fixed wait that a busy machine outlasts)."""
        events: list[int] = []
        producer = Producer({"bootstrap.servers": run.stack.kafka_bootstrap(proxied=False), "linger.ms": 0,
                             "client.id": client_id,
                             "throttle_cb": lambda event: events.append(int(event.throttle_time * 1000))})
        for _ in range(30):
            producer.produce(run.sink("kafka_topic"), b"x" * 10_000)
        if expected:  # the burst need not finish (at 1 kB/s it would take minutes): its first report is enough
            wait_for(lambda: producer.poll(0.1) >= 0 and bool(events), timeout=20, interval=0.05,
                     what="the broker's throttle report")
            producer.purge()
            producer.flush(5)
        else:
            assert producer.flush(30) == 0
            producer.poll(0.5)  # nothing should come: a report would have arrived with the responses
        return max(events, default=0)

    step = KafkaQuota(producer_byte_rate=1000)
    record, handle = apply(step)
    assert "producer_byte_rate=1000" in record.evidence
    assert throttled_ms(run.stack.kafka_client_id, expected=True) > 0
    assert throttled_ms("faultline-harness", expected=False) == 0  # another client id is not throttled
    step.remove(run, handle, record)
    assert "after: " in record.evidence and throttled_ms(run.stack.kafka_client_id, expected=False) == 0


@pytest.mark.timeout(60)
def test_a_refused_read_of_the_buffer_is_a_harness_error_never_nothing_pending(run: Run) -> None:
    from harness.errors import HarnessError
    from harness.rig.tap import BufferTap

    admin = admin_redis(run)
    admin.xadd("tap-stream", {"ids": "1,2"})
    admin.xgroup_create("tap-stream", "tap-group", id="0")
    tap = BufferTap(run.stack, "tap-stream", "tap-group", ids_field="ids")
    try:
        assert tap.evidence().present == frozenset({1, 2})
        admin.execute_command("ACL", "SETUSER", "default", "-xpending")
        with pytest.raises(HarnessError, match="pending entries of tap-stream could not be read"):
            tap.evidence()
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "+@all")
        tap.close()
