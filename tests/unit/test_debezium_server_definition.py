"""Debezium Server into Redis Streams as a target: its definition loads and says where records are
judged (a Redis stream), a target with no message sink or a bad ready_sql is named by
file:line:field, and its provisioning (the distribution unpacked, a Java 21 runtime found or not)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from target_edits import refused_at_its_line

from harness.errors import SetupError
from harness.judge.sink_readers import FileSink, KafkaTopicSink, RedisStreamSink, primary_sink
from harness.model.target import TargetDefinition
from harness.provision import DebeziumServer, check_all
from harness.provision.debezium_server import Java21, _major, _unpack

TARGET = Path(__file__).parents[2] / "targets" / "debezium-server-redis.toml"


class Named:
    """What names a run's sinks (the running exporter, in a run)."""

    def sink(self, role: str) -> str:
        return f"<{role}>"


def test_the_target_is_judged_in_its_redis_stream_and_needs_no_kafka() -> None:
    target = TargetDefinition.load(TARGET)
    assert target.uses == ("postgres", "redis") and "kafka_topic" not in target.sinks
    assert target.requires == {"debezium-server": "3.6.1.Final"}
    reader = primary_sink(None, Named(), target.sinks, target.record)  # type: ignore[arg-type]
    assert isinstance(reader, RedisStreamSink) and reader.key == "<redis_stream>" and reader.field == "value"
    assert isinstance(primary_sink(None, Named(), target.sinks, target.record, "file"),  # type: ignore[arg-type]
                      FileSink)
    both = {**target.sinks, "kafka_topic": "t"}
    assert isinstance(primary_sink(None, Named(), both, target.record), KafkaTopicSink)  # type: ignore[arg-type]
    assert "{namespace}" in target.ready_sql and target.source_reads == "replication"


@pytest.mark.parametrize(("edit", "where"), [
    (('redis_stream = "{namespace}.public.{source_table}"\nredis_stream_field = "value"', 'other = "x"'),
     "[sinks] needs 'kafka_topic' (or, for a pipeline into Redis Streams, 'redis_stream')"),
    (("slot_name = '{namespace}'\"", "slot_name = '{nmespace}'\""), "ready_sql: unknown placeholder {nmespace}"),
    (('requires = { debezium-server = "3.6.1.Final" }', 'requires = { debezium-servr = "3.6.1.Final" }'),
     "requires.debezium-servr"),
])
def test_a_bad_definition_names_its_line_and_field(tmp_path: Path, edit: tuple[str, str], where: str) -> None:
    _message, line = refused_at_its_line(TARGET, tmp_path, edit, where)
    assert line > 0


def _archive(path: Path, names: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in names.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_distribution_is_unpacked_to_what_the_server_runs_on(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "d.tar.gz", {
        "debezium-server/debezium-server-dist-3.6.1.Final-runner.jar": b"jar",
        "debezium-server/lib/a.jar": b"a", "debezium-server/config/lib/b.jar": b"b",
        "debezium-server/connectors/cassandra.jar": b"big", "debezium-server/lib_opt/c.jar": b"opt",
        "elsewhere/lib/x.jar": b"x"})
    _unpack(archive, tmp_path / "out")
    kept = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert kept == ["config/lib/b.jar", "lib/a.jar", "runner.jar"]


def test_an_archive_that_is_not_a_distribution_is_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "d.tar.gz", {"debezium-server/README": b"no jars"})
    with pytest.raises(SetupError, match="not a Debezium Server distribution"):
        _unpack(archive, tmp_path / "out")


@pytest.mark.parametrize(("version", "major"), [
    ('openjdk version "21.0.8" 2025-07-15 LTS', 21), ('openjdk version "17.0.15" 2025-04-15', 17),
    ('java version "1.8.0_392"', 8), ("no version here", 0)])
def test_java_versions_are_read_by_their_major(version: str, major: int) -> None:
    assert _major(version) == major


def test_debezium_server_is_optional_and_missing_until_installed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTLINE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH: the runtime too must come from the cache
    monkeypatch.delenv("JAVA21_HOME", raising=False)
    assert "debezium-server" not in check_all() and check_all(("debezium-server",))["debezium-server"] is None
    assert Java21().locate() is None
    (tmp_path / "debezium-server-3.6.1.Final").mkdir()
    (tmp_path / "debezium-server-3.6.1.Final" / ".complete").write_text("3.6.1.Final\n")
    assert DebeziumServer().locate() is None  # the distribution without a runtime to run it is not installed
    assert "faultline setup --with debezium-server" in DebeziumServer("3.6.0.Final").how_to_install()


def test_explore_draws_redis_errors_among_the_commands_the_target_sends() -> None:
    """Against this target, explore once drew errors for XDEL and GET (the bundled exporter's
    commands), which Debezium Server never sends: 6 fault windows that tested nothing."""
    import random

    from harness.search.explore_plan import ExplorePlan, for_target
    from harness.steps.redis_protocol import RedisCommandError

    plan = for_target(ExplorePlan(runs=1), TargetDefinition.load(TARGET))
    assert plan.world.redis_commands == ("XADD", "PING", "INFO") and plan.links == ("postgres", "redis")
    rng = random.Random(7)
    drawn = {RedisCommandError.draw(rng, plan.world).command for _ in range(200)}
    assert drawn == {"XADD", "PING", "INFO"}
    bundled = {RedisCommandError.draw(rng, ExplorePlan(runs=1).world).command for _ in range(200)}
    assert "XDEL" in bundled and "INFO" not in bundled  # a target that says nothing: the bundled vocabulary


def test_progress_forgets_what_a_file_sink_lost(tmp_path: Path) -> None:
    """A crash that cuts a file sink back (unsynced lines lost): the records it forgot are in
    flight again, not counted as arrived because they once were."""
    from harness.judge.sink_readers import SinkProgress

    path = tmp_path / "records.jsonl"
    path.write_text("".join(f'{{"id": {i}, "payload": "p"}}\n' for i in (1, 2, 3)))
    progress = SinkProgress(FileSink(path))
    assert progress.update() == {1, 2, 3} and not progress.reader.rewound
    with path.open("a") as sink:
        sink.write('{"id": 4, "payload": "p"}\n')
    assert progress.update() == {1, 2, 3, 4}  # read on from where it was
    path.write_text('{"id": 1, "payload": "p"}\n')  # cut back
    assert progress.update() == {1} and progress.reader.rewound
