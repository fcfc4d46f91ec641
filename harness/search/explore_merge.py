"""``faultline explore merge``: the reports of an exploration's shards (``explore --shard I/N`` on
N runners) joined into one, as if one explore had played every run: results in run order, coverage
and signatures counted again over every run's schedule and result, failures grouped across shards
(the first of a group is the one reported, later ones name it), incident files and schedules
copied beside the merged report with their paths and replay commands rewritten.

Refused (exit 2, naming the directory): a directory without an explore report, shards of
different seeds or targets, or two shards that played the same run."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

from harness.catalogue import incident
from harness.errors import HarnessError
from harness.report.report_file import read_report
from harness.report.result import ExploreFailure, ExploreSummary, RunReport, ScenarioResult, Verdict
from harness.search.explore import Coverage, judged, signature

RUN_NAME = re.compile(r"^explore_s(\d+)_r(\d+)$")
COPIED = ("incidents", "schedules")  # what each shard wrote beside its report and the merge keeps


class MergeError(HarnessError):
    """Shards that cannot be joined (no explore report, another seed or target, a run twice)."""


def _shard(directory: Path) -> RunReport:
    path = directory / "report.json"
    if not path.is_file():
        raise MergeError(f"{directory}: no report.json (not an explore's report directory)")
    report = read_report(path)
    if report.explore is None:
        raise MergeError(f"{path}: not an explore's report (a gate's or soak's)")
    return report


def _run_of(result: ScenarioResult, directory: Path) -> int:
    found = RUN_NAME.match(result.name)
    if found is None:
        raise MergeError(f"{directory}: {result.name!r} is not an explore run's name")
    return int(found.group(2))


def _check_alike(shards: list[tuple[Path, RunReport]]) -> None:
    (first_dir, first), runs_seen = shards[0], dict[int, Path]()
    assert first.explore is not None
    for directory, report in shards:
        assert report.explore is not None
        if report.explore.seed != first.explore.seed or report.target != first.target:
            raise MergeError(f"{directory}: seed {report.explore.seed} against {report.target}, but {first_dir} "
                             f"explored seed {first.explore.seed} against {first.target}: not shards of one "
                             "exploration")
        for result in report.scenarios:
            run = _run_of(result, directory)
            if run in runs_seen:
                raise MergeError(f"run {run} is in both {runs_seen[run]} and {directory}: shards play disjoint runs")
            runs_seen[run] = directory


def _copy_files(directory: Path, out: Path) -> dict[str, str]:
    """The shard's incident files and schedules copied under ``out``; old path -> new path."""
    moved: dict[str, str] = {}
    for sub in COPIED:
        for source in sorted((directory / sub).glob("*.toml")):
            target = out / sub / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            moved[str(source)] = str(target)
    return moved


def _moved(failure: ExploreFailure, moved: dict[str, str]) -> ExploreFailure:
    def where(path: str | None) -> str | None:
        return None if path is None else moved.get(path, path)

    replay = failure.replay
    for old, new in moved.items():
        replay = replay.replace(old, new)
    return dataclasses.replace(failure, incident=where(failure.incident) or failure.incident,
                               minimal=where(failure.minimal), amplified=where(failure.amplified), replay=replay)


def _regrouped(failures: list[ExploreFailure]) -> list[ExploreFailure]:
    """In run order, each failure naming the first of its group (same checks, same step kinds)."""
    first: dict[tuple[frozenset[str], frozenset[str]], int] = {}
    grouped = []
    for failure in sorted(failures, key=lambda f: f.run):
        group = (frozenset(failure.violated), frozenset(failure.step_kinds))
        grouped.append(dataclasses.replace(failure, same_as=first.get(group)))
        first.setdefault(group, failure.run)
    return grouped


def _coverage(results: list[tuple[int, ScenarioResult]], out: Path) -> Coverage:
    """Coverage counted again over every run, from its schedule file and its result."""
    coverage = Coverage()
    for run, result in results:
        schedule = out / "schedules" / f"{result.name}.toml"
        if not schedule.is_file():
            raise MergeError(f"run {run}: no schedule {schedule.name} in its shard's schedules/")
        scenario = incident.load(schedule)
        coverage.note(run, scenario, signature(result) if judged(result) else None, scenario.during_s)
    return coverage


def merge_shards(directories: list[Path], out: Path) -> RunReport:
    """One report of every shard's runs (see the module's docstring); files copied under ``out``."""
    shards = [(directory, _shard(directory)) for directory in directories]
    _check_alike(shards)
    results, failures, moved = list[tuple[int, ScenarioResult]](), list[ExploreFailure](), dict[str, str]()
    for directory, report in shards:
        moved.update(_copy_files(directory, out))
        results += [(_run_of(r, directory), r) for r in report.scenarios]
    for _directory, report in shards:
        assert report.explore is not None
        failures += [_moved(f, moved) for f in report.explore.failures]
    results.sort(key=lambda item: item[0])
    coverage = _coverage(results, out)
    summaries = [report.explore for _d, report in shards if report.explore is not None]
    explore = ExploreSummary(
        seed=summaries[0].seed, runs=len(results), failures=_regrouped(failures),
        harness_errors=sum(s.harness_errors for s in summaries), kinds=dict(coverage.kinds.most_common()),
        never_drawn={k: v for s in summaries for k, v in s.never_drawn.items()},
        overlaps=dict(coverage.overlaps.most_common()), inside=dict(coverage.inside.most_common()),
        signatures=dict(coverage.signatures.most_common()), distinct_over_time=coverage.distinct_over_time,
        mutated=sum(s.mutated for s in summaries),
        # Shards run side by side: the exploration took as long as its slowest shard.
        seconds=max(s.seconds for s in summaries),
        not_attributed=[n for s in summaries for n in s.not_attributed], merged_from=[str(d) for d in directories])
    verdict = Verdict.FAIL if explore.failures else Verdict.ERROR if explore.harness_errors else Verdict.PASS
    first = shards[0][1]
    return RunReport(run_id=f"{first.run_id}-merged", target=first.target, backend=first.backend, verdict=verdict,
                     duration_s=explore.seconds, scenarios=[r for _run, r in results], explore=explore,
                     interrupted=any(report.interrupted for _d, report in shards),
                     jobs=max(report.jobs for _d, report in shards), jobs_why="the most of any shard",
                     beside={name: others for _d, report in shards for name, others in report.beside.items()})
