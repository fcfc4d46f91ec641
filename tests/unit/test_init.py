"""``faultline init``: a commented target definition from flags, loaded before it is written; a flag
that would make it unloadable, or a file in the way, is exit 2 naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.model.target import TargetDefinition

FLAGS = ["init", "--name", "theirs", "--command", "{python} -m their_exporter --fast",
         "--env", "DB={postgres_dsn}", "--env", "TOPIC={topic}", "--uses", "postgres,kafka",
         "--delivered-metric", "their_delivered_total", "--dead-lettered-metric", "their_dead_total",
         "--record-id", "after.id", "--record-payload", "after.payload", "--apis", "pause"]


def test_init_writes_a_commented_definition_that_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, FLAGS)
    assert done.exit_code == 0, done.output
    path = tmp_path / "faultline" / "theirs.toml"
    target = TargetDefinition.load(path)
    assert target.command == ["{python}", "-m", "their_exporter", "--fast"] and target.uses == ("postgres", "kafka")
    assert (target.record.id, target.record.payload, target.apis) == ("after.id", "after.payload", ("pause",))
    assert target.metrics == {"delivered": "their_delivered_total", "dead_lettered": "their_dead_total"}
    assert target.env == {"DB": "{postgres_dsn}", "TOPIC": "{topic}"}
    assert "faultline doctor --target" in path.read_text()  # it says how to check it
    again = CliRunner().invoke(main, FLAGS)
    assert again.exit_code == 2 and "exists (--force overwrites it)" in again.output


@pytest.mark.parametrize(("flags", "said"), [
    (["--uses", "postgres,mysql"], "mysql: not one of postgres, redis, kafka"),
    (["--apis", "pause,telepathy"], "telepathy"),
    (["--env", "NOEQUALS"], "write NAME=VALUE"),
    (["--env", "X={no_such_placeholder}"], "unknown placeholder {no_such_placeholder}"),
    (["--ready-path", "healthz"], "ready_path"),
    (["--delivered-metric", "only_one_total"], "name both counters or neither"),
])
def test_a_flag_that_breaks_the_definition_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    flags: list[str], said: str) -> None:
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, ["init", "--name", "x", "--command", "run-it", *flags])
    assert done.exit_code == 2 and said in done.output, done.output
    assert not (tmp_path / "faultline").exists()  # nothing written
