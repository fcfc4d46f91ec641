"""``faultline doctor``: every field of a target definition checked against the running exporter,
on real servers. The bundled target is confirmed field by field; a copy with a wrong record path
and a wrong metric name has exactly those two fields wrong, each with what was seen; a command
that exits is wrong as a command. Debezium's target (slow) is read the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.infra.stack import Stack
from harness.model.plugins import load_target
from harness.model.target import BUNDLED
from harness.paths import shipped_dir
from harness.play.doctor import Finding, examine

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(240)]


def _copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = BUNDLED.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "copy.toml"
    path.write_text(text)
    return path


def _by_field(found: list[Finding]) -> dict[str, Finding]:
    return {f.field: f for f in found}


def test_the_bundled_target_is_confirmed_field_by_field(fresh_stack: Stack, tmp_path: Path) -> None:
    found, result = examine(fresh_stack, load_target(BUNDLED), tmp_path)
    assert [f for f in found if f.ok is not True] == [], result.error
    fields = _by_field(found)
    for field in ("command", "ready_path", "[record] / sinks.kafka_topic", "[metrics].delivered",
                  "[metrics].retries", "[log]", "pause_path / resume_path", "exports_path"):
        assert field in fields, field
    assert "200 of 200 records arrived" in fields["[record] / sinks.kafka_topic"].evidence


@pytest.mark.slow  # nox -s tests keeps its 12 minutes: the decoding it relies on has a unit test
def test_a_wrong_record_path_is_named_with_the_messages_as_they_are(fresh_stack: Stack, tmp_path: Path) -> None:
    wrong = _copy(tmp_path, ('[record]\nop = "op"', '[record]\nid = "record_id"\nop = "op"'))
    found, result = examine(fresh_stack, load_target(wrong), tmp_path / "work")
    fields = _by_field(found)
    assert {f.field for f in found if f.ok is False} == {"[record] / sinks.kafka_topic"}
    record = fields["[record] / sinks.kafka_topic"].evidence
    assert "0 of 200" in record and "no record id where [record] id = 'record_id' says" in record
    assert '"id"' in record  # the message as it is: the id is there, under another name
    assert fields["ready_path"].ok and fields["[metrics].delivered"].ok
    assert result.verdict == "fail"  # and the gate would say so: no record read where the definition says


@pytest.mark.slow  # the steady-state wait before any fault reads the delivered counter: 30 s for nothing
def test_a_wrong_metric_name_is_named_with_what_the_scrape_has(fresh_stack: Stack, tmp_path: Path) -> None:
    wrong = _copy(tmp_path, ('delivered = "exporter_records_delivered_total"',
                             'delivered = "exporter_delivered_total"'))
    found, _result = examine(fresh_stack, load_target(wrong), tmp_path / "work")
    assert {f.field for f in found if f.ok is False} == {"[metrics].delivered"}
    assert "exporter_records_delivered_total" in _by_field(found)["[metrics].delivered"].evidence


def test_a_command_that_exits_is_wrong_as_a_command(fresh_stack: Stack, tmp_path: Path) -> None:
    wrong = _copy(tmp_path, ('command = ["{python}", "-m", "exporter"]',
                             'command = ["{python}", "-c", "raise SystemExit(3)"]'))
    found, _result = examine(fresh_stack, load_target(wrong), tmp_path / "work")
    assert [(f.field, f.ok) for f in found] == [("command", False)]
    assert "exited during start with code 3" in found[0].evidence


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_debeziums_target_is_read_the_same_way(fresh_stack: Stack, tmp_path: Path) -> None:
    target = load_target(shipped_dir() / "targets" / "debezium-postgres.toml")
    found, result = examine(fresh_stack, target, tmp_path)
    fields = _by_field(found)
    assert fields["[record] / sinks.kafka_topic"].ok, result.error or fields
    assert fields["ready_path"].ok and fields["[log]"].ok
    assert not [f for f in found if f.ok is False], found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_wrong_copy_of_debeziums_target_is_named_too(fresh_stack: Stack, tmp_path: Path) -> None:
    text = (shipped_dir() / "targets" / "debezium-postgres.toml").read_text()
    assert 'payload_encoding = "base64"' in text
    wrong = tmp_path / "debezium-wrong.toml"
    wrong.write_text(text.replace('payload_encoding = "base64"', 'payload_encoding = "text"'))
    found, _result = examine(fresh_stack, load_target(wrong), tmp_path / "work")
    fields = _by_field(found)
    assert fields["[record].payload"].ok is False, found  # records arrive, their payloads read wrong
    assert "200 records arrived, 0 with the payload written" in fields["[record].payload"].evidence
