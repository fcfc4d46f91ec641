"""`faultline mutants --explore --kinds`: bad input is exit 2 before any server starts."""

from __future__ import annotations

from click.testing import CliRunner

from harness.cli.main import main


def test_kinds_and_defects_without_explore_are_refused() -> None:
    result = CliRunner().invoke(main, ["mutants", "--kinds", "kafka_leader_lost"])
    assert result.exit_code == 2 and "give --explore too" in result.output


def test_an_unknown_kind_is_refused_before_anything_starts(tmp_path) -> None:  # noqa: ANN001
    result = CliRunner().invoke(main, ["mutants", "--explore", "--kinds", "nope", "--explore-runs", "1",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown step kind(s) ['nope']" in result.output
