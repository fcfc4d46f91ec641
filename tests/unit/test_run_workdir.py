"""A scenario's working directory starts empty: a file an earlier run left under the same --out
(a finished export, a sink's lines) must never pass for this run's (found with export_file_errors:
a job that rightly failed was judged "left a file under its final name" from the run before)."""

from pathlib import Path

from harness.play.run import fresh_directory


def test_what_an_earlier_run_left_is_gone(tmp_path: Path) -> None:
    stale = tmp_path / "export_file_errors" / "exports" / "faultline" / "renamed.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"id": 1}\n')
    fresh = fresh_directory(tmp_path / "export_file_errors")
    assert fresh == tmp_path / "export_file_errors"
    assert not fresh.exists() or not any(fresh.rglob("*"))


def test_a_first_run_gets_its_directory_path(tmp_path: Path) -> None:
    assert fresh_directory(tmp_path / "new") == tmp_path / "new"
