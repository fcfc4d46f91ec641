"""``faultline explore``: the command (see ``harness.search.explore`` for what it does)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import click
from rich.markup import escape

from harness.cli.base import EXIT_HARNESS, EXIT_OK, EXIT_VIOLATION, WritableDir, defect_env, graceful_interrupt
from harness.cli.output import console
from harness.model.plugins import load_target

BACKENDS = ("local", "docker", "external")


def _shard(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    i, _, n = value.partition("/")
    if not (i.isdigit() and n.isdigit()) or not 1 <= int(i) <= int(n) <= 10_000:
        raise click.BadParameter(f"{value!r}: write I/N with 1 <= I <= N <= 10000 (this runner's part of N)")
    return int(i), int(n)


@click.group(invoke_without_command=True)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=1, show_default=True)
@click.option("--budget", default=None, help="How long to explore: 600, 90s, 10m, 1h (or --runs).")
@click.option("--runs", type=click.IntRange(1, 1_000_000), default=None, help="How many runs (or --budget).")
@click.option("--max-overlap", type=click.IntRange(1, 8), default=2, show_default=True,
              help="Faults at most at once in a run.")
@click.option("--kinds", default=None, help="Comma-separated step kinds to draw from (default: every one).")
@click.option("--keep-going", is_flag=True, help="Go on after a failure (failures of one kind are grouped).")
@click.option("--no-shrink", is_flag=True, help="Write failing runs' incident files without shrinking them.")
@click.option("--replays", type=click.IntRange(0, 1000), default=3, show_default=True,
              help="Replays of each new failure before it is written up: its rate goes into its file (0: none).")
@click.option("--amplify-runs", type=click.IntRange(0, 100_000), default=60, show_default=True,
              help="Runs spent looking for a variant of a failure that replays fewer than 9 of 10 times "
                   "that fails more often the same way (0: do not amplify).")
@click.option("--plan-only", is_flag=True, help="Print the schedules drawn from scratch, run nothing.")
@click.option("--defect", default=None, help="Switch on one of the target's seeded defects.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=WritableDir(), default=None, help="Report directory.")
@click.option("--shard", default=None, callback=_shard, metavar="I/N",
              help="Play runs I, I+N, I+2N, ... of the seed's runs (--runs counts all N shards' runs): N runners "
                   "share one exploration; `faultline explore merge` joins their reports. Sharded runs are drawn "
                   "from the seed alone, never from results another runner has.")
@click.option("-j", "--jobs", type=click.IntRange(1, 16), default=None,
              help="Play this many runs at once, each on a stack of its own (default: chosen from the machine's "
                   "cores and memory). The same seed draws the same schedules at -j 1, 2 and 3.")
@click.pass_context
def explore(ctx: click.Context, seed: int, budget: str | None, runs: int | None, max_overlap: int,
            kinds: str | None, keep_going: bool, no_shrink: bool, replays: int, amplify_runs: int, plan_only: bool,
            defect: str | None, backend: str, target_path: str | None, out: str | None,
            shard: tuple[int, int] | None, jobs: int | None) -> None:
    """Many short runs of randomly drawn fault schedules, guided by the exporter's reactions.

    Exit 0 when every run held, 1 when one violated a check (its incident file, shrunk, and the
    command that replays it are printed), 2 when the harness could not judge a run and none
    failed. Ctrl-C once: the current run is healed, judged and reported; twice: stop at once."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.search.explore import ExplorePlan
    from harness.search.soak import parse_duration

    plan = ExplorePlan(seed=seed, runs=runs, budget_s=parse_duration(budget) if budget else None,
                       max_overlap=max_overlap, keep_going=keep_going, shard=shard,
                       kinds=tuple(k.strip() for k in kinds.split(",")) if kinds else ())
    env = defect_env(target_path, defect)  # an unknown defect is refused, plan or run
    if plan_only:
        if budget is not None or runs is not None:
            plan.validate()  # its bounds hold even when only the schedules are printed
        _print_plan(plan, target_path)
        return
    plan.validate()
    with graceful_interrupt("healing, judging and reporting the current run") as interrupt:
        code = _explore(plan, interrupt, backend, target_path, out, env,
                        Handing(not no_shrink, replays, amplify_runs, jobs))
    sys.exit(code)


def _print_plan(plan: object, target_path: str | None) -> None:
    from harness.catalogue import incident
    from harness.model.target import BUNDLED
    from harness.search.explore import ExplorePlan, drawable, for_target, schedules

    assert isinstance(plan, ExplorePlan)
    target = load_target(Path(target_path) if target_path else BUNDLED)  # its own step kinds, if any
    plan = for_target(dataclasses.replace(plan, runs=plan.runs or 10, budget_s=None), target).validate()
    kinds, never = drawable(plan, plan.world)
    for run, scenario, _mutated in schedules(plan, kinds, []):
        if run > (plan.runs or 10):
            break
        if not plan.plays(run):
            continue  # another shard's run
        click.echo(incident.dumps(scenario, f"faultline explore --seed {plan.seed}: run {run} (drawn from scratch)"))
    for name, why in never.items():
        click.echo(f"# never drawn: {name}: {why}")


@dataclasses.dataclass(frozen=True)
class Handing:
    """What is done with a failure before it is reported: shrunk, replayed, amplified."""

    shrink: bool = True
    replays: int = 3
    amplify_runs: int = 60
    jobs: int | None = None  # stacks side by side (-j); None: chosen from the machine


def _explore(plan: object, interrupt: object, backend: str, target_path: str | None, out: str | None,
             env: dict[str, str], handing: Handing) -> int:
    from harness.backends.factory import make_backend
    from harness.model.target import BUNDLED
    from harness.paths import reports_dir
    from harness.play.gate import new_run_id
    from harness.play.parallel import choose_jobs, started_pool
    from harness.report.reports import write_all
    from harness.report.result import RunReport, Verdict
    from harness.search.explore import ExplorePlan
    from harness.search.explore_run import Explorer, against

    assert isinstance(plan, ExplorePlan)
    target_file = Path(target_path) if target_path else BUNDLED
    target = load_target(target_file)
    run_id = new_run_id()
    directory = Path(out) if out else reports_dir() / run_id
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    jobs = choose_jobs(handing.jobs, plan.runs, backend)
    with started_pool(lambda: make_backend(backend, logical_replication=target.postgres_logical_replication,
                                           redis_sentinel=target.redis_discovery == "sentinel"), jobs) as pool:
        stack = pool.stacks[0]
        explorer = Explorer(stack, target, against(plan, stack, target), directory,
                            extra_env=env, interrupt=interrupt, on_run=_progress,  # type: ignore[arg-type]
                            log=lambda m: console.print(f"  [dim]{escape(m)}[/]"), shrink_failures=handing.shrink,
                            replays=handing.replays, amplify_runs=handing.amplify_runs, pool=pool)
        console.print(f"faultline explore: seed {plan.seed}, "
                      + (f"{plan.runs} runs" if plan.runs else f"{plan.budget_s:.0f}s budget")
                      + (f", shard {plan.shard[0]}/{plan.shard[1]}" if plan.shard else "")
                      + f", on {backend}, {jobs.n} at a time ({escape(jobs.why)})")
        found = explorer.explore()
    code = EXIT_VIOLATION if found.failures else EXIT_HARNESS if found.harness_errors else EXIT_OK
    verdict = {EXIT_OK: Verdict.PASS, EXIT_VIOLATION: Verdict.FAIL, EXIT_HARNESS: Verdict.ERROR}[code]
    write_all(directory, RunReport(run_id=run_id, target=str(target_file), backend=backend, verdict=verdict,
                                   duration_s=round(time.monotonic() - t0, 3), scenarios=explorer.results,
                                   explore=found, interrupted=interrupt.is_set(),  # type: ignore[attr-defined]
                                   jobs=jobs.n, jobs_why=jobs.why))
    _print_summary(found, directory)
    if code == EXIT_OK and interrupt.is_set():  # type: ignore[attr-defined]
        return 130
    return code


def _progress(progress: object) -> None:
    from harness.search.explore_run import Progress

    assert isinstance(progress, Progress)
    left = "" if progress.left_s is None else f", {progress.left_s:.0f}s left"
    verdict = progress.result.verdict
    colour = {"pass": "green", "fail": "red"}.get(str(verdict), "yellow")
    console.print(f"run {progress.run} [{colour}]{verdict}[/] {escape(progress.result.name)}"
                  f"{' (mutated)' if progress.mutated else ''}: {progress.failures} failure(s), "
                  f"{progress.distinct} distinct signature(s){left}")
    for check in progress.result.violations:
        console.print(f"    [red]✗ {escape(check.name)}[/]: {escape(check.detail[:300])}")
    if progress.result.error:
        console.print(f"    [yellow]harness: {escape(progress.result.error[:300])}[/]")


def _print_summary(found: object, directory: Path) -> None:
    from harness.report.result import ExploreSummary

    assert isinstance(found, ExploreSummary)
    console.print(f"{found.runs} runs in {found.seconds:.0f}s ({found.runs_per_hour:.0f}/hour), "
                  f"{len(found.signatures)} distinct signatures, {found.mutated} mutated from the corpus, "
                  f"{found.harness_errors} harness error(s)")
    console.print("step kinds run: " + ", ".join(f"{k} {n}" for k, n in found.kinds.items()))
    for failure in found.failures:
        console.print(f"[red]failure[/] in run {failure.run}: {escape(', '.join(failure.violated))}"
                      + (f" (like run {failure.same_as})" if failure.same_as else "")
                      + (f"\n  rate:     {escape(failure.rate_said)}" if failure.rate_said else "")
                      + f"\n  incident: {escape(failure.minimal or failure.amplified or failure.incident)}"
                      + f"\n  replay:   {escape(failure.replay)}")
    console.print(f"reports: {directory}")


@explore.command("merge")
@click.argument("directories", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=WritableDir(), default=None, help="Report directory for the merged report.")
def merge(directories: tuple[str, ...], out: str | None) -> None:
    """Join the reports of an explore's shards (`explore --shard I/N`) into one: runs, coverage,
    signatures, failures grouped across shards, incident files. Exit as explore would have."""
    from harness.paths import reports_dir
    from harness.play.gate import new_run_id
    from harness.report.reports import write_all
    from harness.search.explore_merge import merge_shards

    directory = Path(out) if out else reports_dir() / new_run_id()
    report = merge_shards([Path(d) for d in directories], directory)
    write_all(directory, report)
    assert report.explore is not None
    _print_summary(report.explore, directory)
    found = report.explore
    sys.exit(EXIT_VIOLATION if found.failures else EXIT_HARNESS if found.harness_errors else EXIT_OK)
