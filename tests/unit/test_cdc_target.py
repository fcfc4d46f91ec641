"""A change-data-capture target (Debezium) through the target definition: where a record sits in
an envelope, what it does not use or offer (skipped with the reason), its bad input named by
file:line:field, and its provisioning."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from target_edits import refused_at_its_line

from harness.errors import SetupError
from harness.model.log_format import LogFormat
from harness.model.record_format import NOT_A_RECORD, RecordFormat
from harness.model.target import TargetDefinition, TargetError
from harness.play.verdict import log_kinds
from harness.provision import OPTIONAL, Debezium, check_all
from harness.scenario import DiskFull, Export, LinkDown, Pause, RedisRefuseWrites, RestartService, Toxic
from harness.steps.load import Load

DEBEZIUM = Path(__file__).parents[2] / "targets" / "debezium-postgres.toml"
ENVELOPE = RecordFormat(id="after.id", key="after.key", payload="after.payload", payload_encoding="base64",
                        row="after")


def event(after: dict | None, op: str = "c") -> bytes:
    return json.dumps({"before": None, "after": after, "op": op, "source": {"lsn": 1}}).encode()


def test_a_change_event_gives_the_row_and_its_bytes() -> None:
    raw = bytes([0xFF, 0x00, 0x41])  # not UTF-8: a CDC connector carries the bytea as it is
    fields = ENVELOPE.fields(event({"id": 7, "key": "k", "payload": base64.b64encode(raw).decode()}))
    assert fields == (7, raw, "", None, None)  # no op path: a message is a row


def test_deletes_and_tombstones_are_not_records_and_other_shapes_are_unexpected() -> None:
    assert ENVELOPE.fields(event(None, op="d")) is NOT_A_RECORD
    assert ENVELOPE.fields(b"") is NOT_A_RECORD
    assert ENVELOPE.fields(b"not json") == (None, None, "", None, None)
    # An id must be a number.
    assert ENVELOPE.fields(event({"id": "7", "payload": "AA=="})) == (None, None, "", None, None)
    assert ENVELOPE.fields(event({"id": True, "payload": "AA=="})) == (None, None, "", None, None)
    # Not base64: compared as corrupted.
    assert ENVELOPE.fields(event({"id": 3, "payload": "%%%"})) == (3, None, "", None, None)
    assert RecordFormat().fields(b"") == (None, None, "", None, None)  # the bundled shape has no tombstones
    assert RecordFormat().plain and not ENVELOPE.plain


CHANGES = RecordFormat(id="after.id", key="after.key", payload="after.payload", payload_encoding="base64",
                       row="after", op="op", delete_id="before.id")


def test_a_change_format_reads_updates_and_names_the_row_a_delete_removes() -> None:
    update = event({"id": 7, "key": "k", "payload": base64.b64encode(b"c3:x").decode()}, op="u")
    assert CHANGES.fields(update) == (7, b"c3:x", "u", None, None) and CHANGES.operation("u") == "update"
    delete = json.dumps({"before": {"id": 7, "key": None, "payload": None}, "after": None, "op": "d"}).encode()
    assert CHANGES.fields(delete) == (7, None, "d", None, None) and CHANGES.operation("d") == "delete"
    assert CHANGES.fields(b"") is NOT_A_RECORD  # the tombstone after a delete
    assert CHANGES.operation("x") == "" and RecordFormat().operation("") == "insert"
    assert RecordFormat(op="op").plain and not CHANGES.plain
    assert RecordFormat(updates=("u", "c")).problem() == ("deletes", "'c' is given for two operations")


def test_the_debezium_target_loads_and_says_what_it_cannot_do() -> None:
    target = TargetDefinition.load(DEBEZIUM)
    assert target.uses == ("postgres", "kafka") and not target.has_metrics and target.delivery == "at-least-once"
    assert target.requires == {"debezium": "3.7.0.Final"} and target.postgres_logical_replication
    assert "does not use redis" in (target.idle_for(LinkDown("redis")) or "")
    assert "does not use redis" in (target.idle_for(RedisRefuseWrites("oom")) or "")
    assert "does not use redis" in (target.idle_for(RestartService("redis")) or "")
    assert target.idle_for(LinkDown("kafka")) is None and target.unsupported(LinkDown("redis")) is None
    assert target.unsupported(Pause(grace_s=2.0)) is None and target.pause_protocol == "connect"
    assert "no exports API" in (target.unsupported(Export("x.jsonl")) or "")
    assert "no export_dir" in (target.unsupported(DiskFull()) or "")
    assert "no exports API" in (target.unsupported(Load(kind="api")) or "")
    for step in (LinkDown("kafka"), Toxic("postgres", "latency", attributes={"latency": 100}),
                 RestartService("postgres"), Load(kind="source")):
        assert target.unsupported(step) is None and target.idle_for(step) is None, step.describe()
    assert "no dead-letter stream" in (target.cannot_run("kafka", expects_dead_letters=True) or "")
    assert "no file sink" in (target.cannot_run("file", expects_dead_letters=False) or "")
    assert target.cannot_run("kafka", expects_dead_letters=False) is None


def test_the_bundled_target_supports_every_kind_of_step() -> None:
    target = TargetDefinition.load()
    for step in (LinkDown("redis"), Pause(grace_s=2.0), Export("x.jsonl"), DiskFull(), Load(kind="api")):
        assert target.unsupported(step) is None and target.idle_for(step) is None, step.describe()


@pytest.mark.parametrize(("edit", "where"), [
    (('payload_encoding = "base64"', 'payload_encoding = "hex"'), "record.payload_encoding"),
    (('id = "after.id"', 'id = "after..id"'), "record.id"),
    (('row = "after"', 'row = "after"\ncolour = "red"'), "record.colour"),
    (('uses = ["postgres", "kafka"]', 'uses = ["postgres", "mysql"]'), "uses"),
    (('requires = { debezium = "3.7.0.Final" }', 'requires = { debezium = "latest" }'), "requires"),
    (('delivery = "at-least-once"', 'delivery = "sometimes"'), "delivery"),
    (('format = "pattern"', 'format = "xml"'), "log.format"),
    (("pattern = '^", "pattern = '(^"), "log.pattern"),  # does not compile
    (("(?P<level>", "(?P<severity>"), "log.pattern"),  # no `level` group
    (('format = "pattern"', 'format = "pattern"\nlevels = { WARN = "loud" }'), "log.levels"),
    (('format = "pattern"', 'format = "pattern"\ncolour = "red"'), "log.colour"),
    (('format = "pattern"', 'format = 1.5'), "log.format"),
])
def test_a_bad_cdc_target_names_its_line_and_field(tmp_path: Path, edit: tuple[str, str], where: str) -> None:
    _message, line = refused_at_its_line(DEBEZIUM, tmp_path, edit, where)
    assert edit[1].split("\n")[-1].split(" ")[0] in (tmp_path / "t.toml").read_text().splitlines()[line - 1]


def test_debezium_is_optional_and_checked_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTLINE_CACHE_DIR", str(tmp_path))
    assert "debezium" not in check_all() and check_all(("debezium",))["debezium"] is None
    with pytest.raises(SetupError, match="no optional component mysql"):
        check_all(("mysql",))
    assert set(OPTIONAL) == {"debezium", "debezium-server"}
    assert "3.5.2.Final" in Debezium("3.5.2.Final").how_to_install()


def test_a_knob_a_target_has_no_setting_for_is_left_out_and_files_read_knob_values() -> None:
    target = TargetDefinition.load(DEBEZIUM)
    assert target.knob_env({"batch_size": "5", "delivery_timeout_ms": "1500"}) == {"CONNECT_MAX_BATCH_SIZE": "5"}
    template = target.files["connector.properties"]
    assert "max.batch.size={env[CONNECT_MAX_BATCH_SIZE]}" in template
    from harness.rig.exporter_process import RunContext

    class Stack:  # only the endpoints placeholders are filled from
        kafka_client_id = "c1"
        redis_sentinel = None

        def exporter_postgres_dsn(self, proxied: bool = True) -> str:
            return "postgresql://exp:pw@127.0.0.1:5555/db"

        def exporter_redis_url(self, proxied: bool = True) -> str:
            return "redis://x"

        def kafka_bootstrap(self, proxied: bool = True) -> str:
            return "127.0.0.1:9"

    ctx = RunContext(Stack(), "s_x_1", Path("/tmp/w"), http_port=1)  # type: ignore[arg-type]
    text = ctx.fill(template, {"CONNECT_MAX_BATCH_SIZE": "5"})
    assert "max.batch.size=5" in text and "database.user=exp" in text and "database.port=5555" in text
    assert "slot.name=s_x_1" in text and "table.include.list=public.s_x_1_source" in text
    with pytest.raises(TargetError, match="unknown placeholder"):
        ctx.fill(template, {})


def test_a_target_can_extend_another_and_only_one_level(tmp_path: Path) -> None:
    old = TargetDefinition.load(DEBEZIUM.with_name("debezium-postgres-3.6.1.toml"))
    base = TargetDefinition.load(DEBEZIUM)
    assert old.requires == {"debezium": "3.6.1.Final"} != base.requires
    assert (old.files, old.record, old.uses) == (base.files, base.record, base.uses)
    (tmp_path / "base.toml").write_text(DEBEZIUM.read_text())
    (tmp_path / "mid.toml").write_text('extends = "base.toml"\nname = "mid"\n')
    (tmp_path / "top.toml").write_text('name = "top"\nextends = "mid.toml"\n')
    assert TargetDefinition.load(tmp_path / "mid.toml").name == "mid"
    with pytest.raises(TargetError, match=r"top.toml:2: extends: mid.toml extends another"):
        TargetDefinition.load(tmp_path / "top.toml")
    (tmp_path / "bad.toml").write_text('extends = "../x.toml"\n')
    with pytest.raises(TargetError, match=r"bad.toml:1: extends: name a .toml file beside this one"):
        TargetDefinition.load(tmp_path / "bad.toml")


class Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, 1_700_000_000_000


def test_the_sink_reader_skips_what_is_no_record_and_keeps_what_it_cannot_read() -> None:
    from harness.judge.sinks import _decoded, message_decoder

    payload = base64.b64encode(b"abc").decode()
    messages = [Message(0, event({"id": 1, "key": "k", "payload": payload})), Message(1, b""),
                Message(2, event(None, op="d")), Message(3, b"{not json"),
                Message(4, event({"id": 2, "payload": payload}))]
    todo = {0}
    records = _decoded(messages, {0: 5}, {0: "kafka:t/0"}, todo, message_decoder(ENVELOPE))
    assert [(r.record_id, r.payload, r.location) for r in records] == [
        (1, b"abc", "kafka:t/0@0"), (None, None, "kafka:t/0@3"), (2, b"abc", "kafka:t/0@4")]
    assert records[1].raw == b"{not json" and not todo  # kept for the reconciler to report; partition read
    plain = _decoded([Message(0, b'{"id": 5, "payload": "x"}')], {0: 1}, {0: "s"}, {0}, message_decoder(None))
    assert [(r.record_id, r.payload) for r in plain] == [(5, "x")]


CONNECT_LOG = """\
[2026-11-26 03:00:01,100] INFO Kafka Connect started (org.apache.kafka.connect.runtime.Connect)
[2026-11-26 03:00:02,200] WARN [Producer clientId=faultline-exporter] Got error produce response with correlation \
id 140 on topic-partition s_run_4c2987.public.s_run_4c2987_source-0 (org.apache.kafka.clients.producer.internals.Sender)
[2026-11-26 03:00:03,300] ERROR WorkerSourceTask{id=faultline-source-0} Task threw an uncaught exception \
(org.apache.kafka.connect.runtime.WorkerTask)
org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer.
\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)
[2026-11-26 03:00:04,400] WARN [Producer clientId=faultline-exporter] Got error produce response with correlation \
id 7 on topic-partition s_run_4c2987.public.s_run_4c2987_source-0 (org.apache.kafka.clients.producer.internals.Sender)
"""
RUN_NAMES = {"namespace": "s_run_4c2987", "source_table": "s_run_4c2987_source"}


def test_a_connect_log_is_read_by_the_targets_pattern_with_its_stack_traces() -> None:
    records = TargetDefinition.load(DEBEZIUM).log.records(CONNECT_LOG)
    assert [r["level"] for r in records] == ["info", "warning", "error", "warning"]
    assert records[2]["logger"] == "org.apache.kafka.connect.runtime.WorkerTask"
    assert records[2]["trace"][0].startswith("org.apache.kafka.connect.errors.ConnectException")
    assert len(records[2]["trace"]) == 2 and "trace" not in records[1]


def test_log_kinds_are_the_same_across_runs_whatever_the_names_and_numbers() -> None:
    records = TargetDefinition.load(DEBEZIUM).log.records(CONNECT_LOG)
    kinds = log_kinds(records, RUN_NAMES)
    assert kinds == [
        "error: WorkerSourceTask{id=faultline-source-#} Task threw an uncaught exception (WorkerTask)",
        # a long message is cut (at 140 characters), its logger kept
        "warning: [Producer clientId=faultline-exporter] Got error produce response with correlation id # on "
        "topic-partition {namespace}.public.{source_table} (Sender)",
    ]
    other_run = CONNECT_LOG.replace("4c2987", "9fe0a1").replace("id 140", "id 3")
    assert log_kinds(TargetDefinition.load(DEBEZIUM).log.records(other_run), {
        "namespace": "s_run_9fe0a1", "source_table": "s_run_9fe0a1_source"}) == kinds
    assert log_kinds(records) != kinds  # without the run's names, every run would be a new signature


def test_the_bundled_log_is_json_lines_and_keeps_what_it_cannot_parse() -> None:
    text = '{"level": "error", "msg": "send failed", "stage": "sink.kafka"}\n{"level": "warn\nplain line\n'
    records = LogFormat().records(text)
    assert records[0] == {"level": "error", "msg": "send failed", "stage": "sink.kafka"}
    assert records[1]["level"] == "unparsed" and len(records) == 2
    assert log_kinds(records) == ["error: send failed [sink.kafka]"]


def test_a_check_that_cannot_be_judged_is_shown_not_applicable_never_held(tmp_path: Path) -> None:
    from harness.report.journal import Check
    from harness.report.report_file import read_report
    from harness.report.reports import write_all
    from harness.report.result import RunReport, ScenarioResult, Verdict

    why = "not applicable: target debezium-postgres names no metrics (no [metrics] table)"
    result = ScenarioResult("demo", "d", None, verdict=Verdict.PASS,
                            checks=[Check("no_loss", True, "all 9 delivered"),
                                    Check("metrics_agree", True, why, applicable=False)])
    write_all(tmp_path, RunReport(run_id="r", target="t", backend="local", verdict=Verdict.PASS, duration_s=1.0,
                                  scenarios=[result]))
    junit, html = (tmp_path / "junit.xml").read_text(), (tmp_path / "report.html").read_text()
    assert junit.count("<skipped") == 1 and "no [metrics] table" in junit
    assert '<td class="na">n/a</td>' in html and '<td class="pass">yes</td>' in html
    back = read_report(tmp_path / "report.json").scenarios[0].checks
    assert [c.applicable for c in back] == [True, False] and back[1].ok  # never a violation


def test_a_relative_work_directory_is_handed_to_the_target_absolutely(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The target's process runs from elsewhere: `--out reports/gate` once told the exporter of a
    tokens file it could not find (exit 2 at start)."""
    from harness.rig.exporter_process import RunContext

    monkeypatch.chdir(tmp_path)
    ctx = RunContext(object(), "s_x_1", Path("reports/gate/work"), http_port=1)  # type: ignore[arg-type]
    assert ctx.api_tokens_file == tmp_path / "reports" / "gate" / "work" / "api-tokens.toml"
    assert ctx.api_tokens_file.is_absolute()


def test_a_targets_own_record_format_is_never_read_through_the_bundled_shape() -> None:
    """A [record] id path that names nothing in the messages leaves them unread (the reconciler
    reports them); the bundled shape's "id" was once read instead, and a wrong definition passed."""
    from harness.judge.sinks import _decoded, message_decoder
    from harness.model.record_format import RecordFormat

    bundled_shape = b'{"id": 7, "payload": "x"}'
    wrong_path = _decoded([Message(0, bundled_shape)], {0: 1}, {0: "s"}, {0}, message_decoder(RecordFormat(id="rid")))
    assert [(r.record_id, r.raw) for r in wrong_path] == [(None, bundled_shape)]
    bundled = _decoded([Message(0, b'{"id": "7", "payload": "x"}')], {0: 1}, {0: "s"}, {0}, message_decoder(None))
    assert [r.record_id for r in bundled] == [7]  # the bundled shape's slow path still reads it
