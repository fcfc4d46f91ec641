"""Leak trends from resource samples, and the files a Locust run leaves (stats CSV, journals)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.resources import Sample, trends
from harness.report.result import RequestStats
from harness.rig.load import LoadError, LoadRun, read_stats
from harness.scenario import Load


def samples(pid: int, n: int, rss=lambda i: 100.0, files=lambda i: 50, t0: float = 0.0) -> list[Sample]:  # noqa: ANN001
    return [Sample(t0 + i, pid, rss(i), files(i), 10, 5) for i in range(n)]


def test_flat_process_has_no_leak() -> None:
    found = trends(samples(1, 120))
    assert found and not [t for t in found if t.leak]


def test_growing_rss_is_a_leak_and_names_the_quantity() -> None:
    found = trends(samples(1, 600, rss=lambda i: 100.0 + i * 0.5))  # +300 MiB over ten minutes
    leaks = [t for t in found if t.leak]
    assert [t.quantity for t in leaks] == ["rss_mib"]
    assert leaks[0].slope_per_min == pytest.approx(30.0, rel=0.01)
    assert "LEAK" in leaks[0].describe()


def test_growing_file_descriptors_are_a_leak() -> None:
    assert [t.quantity for t in trends(samples(1, 300, files=lambda i: 50 + i // 3)) if t.leak] == ["open_files"]


def test_small_growth_and_noise_are_not_leaks() -> None:
    # +20 MiB over the run: under the absolute threshold; and a sawtooth with no trend.
    assert not [t for t in trends(samples(1, 600, rss=lambda i: 200 + i / 30)) if t.leak]
    assert not [t for t in trends(samples(1, 600, rss=lambda i: 200 + (i % 20) * 5)) if t.leak]


def test_restarts_are_separate_lifetimes_not_a_trend() -> None:
    # Each lifetime is flat; joined they would look like a step up.
    found = trends(samples(1, 100, rss=lambda i: 100) + samples(2, 100, rss=lambda i: 400, t0=100))
    assert {t.pid for t in found} == {1, 2}
    assert not [t for t in found if t.leak]


def test_too_short_a_lifetime_is_not_judged() -> None:
    assert trends(samples(1, 8)) == []


def test_locust_stats_csv_is_read_per_request_name(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats.csv"
    path.write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
        "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
        "99.99%,100%\n"
        "POST,POST /exports,1000,2,12,14.2,3,180,310,512.5,1.0,12,14,15,16,20,40,60,90,150,180,180\n"
        ",Aggregated,1000,2,12,14.2,3,180,310,512.5,1.0,12,14,15,16,20,40,60,90,150,180,180\n")
    rows = read_stats(path)
    assert rows[0] == RequestStats(name="POST /exports", type="POST", requests=1000, failures=2, rps=512.5,
                                   p50_ms=12.0, p95_ms=40.0, p99_ms=90.0, max_ms=180.0)
    assert rows[1].name == "Aggregated"


def _run(tmp_path: Path) -> LoadRun:
    return LoadRun(Load("source"), 5, tmp_path, dsn="postgresql://x", table="t", base_url="http://127.0.0.1:1")


def test_journals_of_every_locust_process_are_read(tmp_path: Path) -> None:
    (tmp_path / "journal-10.tsv").write_text(f"I\ta\t{'ab' * 8}\nI\tb\t{'cd' * 8}\nR\ta\t5\tok\nR\tb\t-\tfailed\n")
    (tmp_path / "journal-11.tsv").write_text(f"I\tc\t{'ef' * 8}\nR\tc\t-\tindeterminate\n")
    asked: list[list[str]] = []

    def resolve(keys: list[str]) -> dict[str, int]:
        asked.append(keys)
        return {"c": 6}  # the source says the indeterminate write did commit, as id 6

    entries = _run(tmp_path).journal(resolve)
    assert [(e.record_id, e.outcome) for e in entries] == [(5, "ok"), (None, "failed"), (6, "ok")]
    assert entries[0].digest == bytes.fromhex("ab" * 8)
    assert asked == [["c"]]  # only the unknown outcome is looked up


def test_a_writer_stopped_mid_insert_is_resolved_against_the_source(tmp_path: Path) -> None:
    # Intent written, insert under way, killed before the result line (or in the middle of it).
    (tmp_path / "journal-10.tsv").write_text(f"I\ta\t{'ab' * 8}\nI\tb\t{'cd' * 8}\nI\tc\t{'ee' * 8}\nR\tb\t8")
    entries = _run(tmp_path).journal(lambda keys: {"a": 7} if sorted(keys) == ["a", "b", "c"] else {})
    assert sorted((e.record_id, e.outcome) for e in entries if e.outcome == "ok") == [(7, "ok")]
    assert sorted(e.outcome for e in entries) == ["failed", "failed", "ok"]  # b and c never committed


def test_a_garbled_journal_line_is_an_error_not_a_guess(tmp_path: Path) -> None:
    (tmp_path / "journal-10.tsv").write_text(f"I\ta\t{'ab' * 8}\nbogus line\nR\ta\t5\tok\n")
    with pytest.raises(LoadError, match="journal-10.tsv:2"):
        _run(tmp_path).journal(lambda keys: {})


def test_distributed_mode_asks_locust_for_worker_processes(tmp_path: Path) -> None:
    run = LoadRun(Load("api", users=50, workers=3), 20, tmp_path, dsn="d", table="t", base_url="http://127.0.0.1:9")
    command = run.command()
    assert command[command.index("--processes") + 1] == "3"
    assert command[command.index("--users") + 1] == "50"
    assert command[command.index("--run-time") + 1] == "20s"
    assert "--processes" not in _run(tmp_path).command()


def test_a_new_run_in_an_old_directory_starts_without_its_journals(tmp_path: Path) -> None:
    (tmp_path / "journal-1.tsv").write_text("301\tdeadbeef\tok\n")  # an earlier run's, older format
    (tmp_path / "locust_stats.csv").write_text("stale")
    run = LoadRun(Load("source"), 1, tmp_path, dsn="postgresql://127.0.0.1:1/x", table="t",
                  base_url="http://127.0.0.1:1")
    try:
        run.start()
        assert not (tmp_path / "journal-1.tsv").exists() and not (tmp_path / "locust_stats.csv").exists()
    finally:
        run.stop()
