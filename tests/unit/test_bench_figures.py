"""Benchmark figures that reproduce: judged on the worst round, a miss said by how much, the
machine and day in every row, README's table generated from the bench files (and only so)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.cli.bench import TABLE_BEGIN, TABLE_END, last_bench_files, missed, table, write_table
from harness.errors import HarnessError
from harness.paths import project_root
from harness.report.figures import BenchFile, BenchFileError, Figure, Load, Machine, dumps, read_bench_file

MACHINE = Machine(cpu="Example CPU", cores=2, memory_gib=23.4, kernel="6.1", python="3.11.7")


def bench_file(name: str, figures: tuple[Figure, ...], at: str = "2026-12-06T07:00:00+00:00",
               machine: Machine = MACHINE) -> BenchFile:
    return BenchFile(benchmark=name, at=at, machine=machine, fingerprint=machine.fingerprint,
                     load=Load(0.4, 1.2, 55.0), seconds=12.5, figures=figures)


def test_a_figure_is_judged_on_its_worst_round_and_a_miss_says_by_how_much() -> None:
    ratio = Figure("ratio to the raw pipe", "x", (0.95, 0.62, 0.8), "higher", 0.9)
    assert ratio.worst == 0.62 and ratio.best == 0.95 and not ratio.met
    assert ratio.missed_by == pytest.approx(0.3111, abs=1e-3)
    assert ratio.verdict() == "MISSED by 31% (>= 0.9 x)"
    latency = Figure("p99", "ms", (120.0, 240.0), "lower", 250)
    assert latency.met and latency.missed_by == 0 and latency.verdict() == "met (<= 250 ms)"
    assert Figure("third party", "x", (0.1,)).verdict() == "measured, no target"
    for bad in ((), (float("nan"),), (1.0, float("inf"))):
        with pytest.raises(HarnessError, match="finite"):
            Figure("bad", "s", bad)


def test_a_missed_target_is_listed_with_its_worst_round() -> None:
    found = bench_file("load", (Figure("requests", "requests/s", (506.0, 537.0), "higher", 500),
                                Figure("submission p99", "ms", (400.0, 410.0), "lower", 250)))
    assert missed(found) == ["load: submission p99: worst round 410 ms, MISSED by 64% (<= 250 ms)"]


def test_the_table_names_the_machine_and_says_which_rows_are_of_another_day_or_machine() -> None:
    other = dataclasses.replace(MACHINE, cores=8, cpu="Bigger CPU")
    files = [bench_file("stack", (Figure("cold start", "s", (2.9, 3.1), "lower", 6),)),
             bench_file("load", (Figure("p99", "ms", (130.0,), "lower", 250),), at="2026-11-25T10:00:00+00:00"),
             bench_file("reconcile", (Figure("10M", "s", (21.4,), "lower", 10),), machine=other,
                        at="2026-12-05T10:00:00+00:00")]
    rows = {line.split("|")[1].strip(): line for line in table(files).splitlines() if line.startswith("| `")}
    assert "| 3.1 s | 2.9, 3.1 | met (<= 6 s) |" in rows["`stack`"] and "another" not in rows["`stack`"]
    assert "**another day**" in rows["`load`"] and "2026-11-25" in rows["`load`"]
    assert "**another machine** (8 cores, 23 GiB, Bigger CPU)" in rows["`reconcile`"]
    assert "MISSED by 114% (<= 10 s)" in rows["`reconcile`"]


def test_readme_table_is_replaced_between_its_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{TABLE_BEGIN}\nhand-typed | rows\n{TABLE_END}\nafter\n")
    files = [bench_file("stack", (Figure("cold start", "s", (3.0,), "lower", 6),))]
    assert write_table(readme, files) is True
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith("\nafter\n") and "hand-typed" not in text
    assert table(files) in text and write_table(readme, files) is False
    readme.write_text("no markers")
    with pytest.raises(HarnessError, match="no bench table markers"):
        write_table(readme, files)


def test_a_bench_file_is_read_back_or_refused_naming_the_field(tmp_path: Path) -> None:
    good = bench_file("stack", (Figure("cold start", "s", (3.0, 2.5), "lower", 6),))
    path = tmp_path / "stack.json"
    path.write_text(dumps(good))
    assert read_bench_file(path) == good
    raw = json.loads(dumps(good))
    raw["figures"][0]["better"] = "sideways"
    path.write_text(json.dumps(raw))
    with pytest.raises(BenchFileError, match=r"stack.json:figures.0.better"):
        read_bench_file(path)
    raw["figures"][0].update(better="lower", rounds=["NaN"])
    path.write_text(json.dumps(raw))
    with pytest.raises(BenchFileError, match="stack.json"):
        read_bench_file(path)


@pytest.mark.parametrize(("where", "stray"), [((), "targett"), (("figures", 0), "roundz"), (("machine",), "kernal")])
def test_a_bench_file_with_a_field_the_types_do_not_name_is_refused(tmp_path: Path, where: tuple[object, ...],
                                                                     stray: str) -> None:
    raw = json.loads(dumps(bench_file("stack", (Figure("cold start", "s", (3.0,), "lower", 6),))))
    place = raw
    for step in where:
        place = place[step]
    place[stray] = 1
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(raw))
    dotted = ".".join(map(str, (*where, stray)))
    with pytest.raises(BenchFileError, match=rf"stack.json:{dotted}: not a field"):
        read_bench_file(path)



def test_readme_table_is_the_one_the_committed_bench_files_give() -> None:
    """Not hand-typed: `faultline bench --table --write` wrote it from bench/results."""
    files = last_bench_files(project_root() / "bench" / "results")
    assert {f.benchmark for f in files} >= {"exporter", "load", "reconcile", "parallel"}
    assert table(files) in (project_root() / "README.md").read_text()
