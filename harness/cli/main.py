"""The ``faultline`` command.

Exit codes everywhere: 0 all held, 1 an invariant of the system under test was violated,
2 the harness itself failed (missing binary, bad input, a server that would not start).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource
from rich.markup import escape

from harness.backends.factory import BACKENDS
from harness.checks import verify as verify_checks
from harness.cli.base import (
    EXIT_HARNESS,
    EXIT_OK,
    EXIT_VIOLATION,
    FaultlineGroup,
    FiniteFloat,
    WritableDir,
    graceful_interrupt,
)
from harness.cli.bench_command import bench
from harness.cli.check import check
from harness.cli.explore import explore
from harness.cli.incidents import reproduce, shrink, soak
from harness.cli.output import (
    checks_table,
    comparison_table,
    console,
    installed_table,
    judged_line,
    make_console,
    print_result,
    print_what_failed,
    results_table,
    steps_table,
    table_of,
)
from harness.cli.scaffold import doctor, init
from harness.cli.up import up
from harness.infra.kafka_clients import show_kafka_logs
from harness.infra.lifecycle import unwind_on_termination
from harness.model.plugins import load_target
from harness.provision import OPTIONAL, check_all, provision_all
from harness.report.result import Verdict


@click.group(cls=FaultlineGroup)
@click.version_option(package_name="faultline")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Faultline: chaos harness and verification suite for data exporters."""
    # Everything a run writes (reports, logs, exports, the servers' files) is the user's alone:
    # a run's logs and exports hold the records, and its directories the exporter's tokens.
    # Not for setup: the system's package manager it may call keeps its own modes.
    if ctx.invoked_subcommand != "setup":
        os.umask(0o077)
    unwind_on_termination()
    verify_checks()  # every Expect field is read by exactly one check, or nothing starts
    show_kafka_logs()  # the harness's own Kafka clients log through Python logging, at the chosen level


@main.command()
@click.option("--check", is_flag=True, help="Only report what is present; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--with", "with_", multiple=True, type=click.Choice(sorted(OPTIONAL)),
              help="Also an optional component: debezium (Kafka Connect with Debezium's Postgres connector).")
def setup(check: bool, as_json: bool, with_: tuple[str, ...]) -> None:
    """Find or install (and cache) PostgreSQL, Redis, Java, Kafka and Toxiproxy (and, --with, more)."""
    if check:
        found = check_all(with_)
    else:
        with console.status("provisioning servers") as status:
            def log(message: str) -> None:
                status.update(message)
                console.log(message)

            found = dict(provision_all(log, on_done=lambda item: console.log(f"{item.name}: {item.version}"),
                                       with_=with_))
    if as_json:
        click.echo(json.dumps({k: (v.to_dict() if v else None) for k, v in found.items()}, indent=2))
    else:
        console.print(installed_table(found))
    missing = [name for name, item in found.items() if item is None]
    if missing:
        console.print(f"[red]missing: {', '.join(missing)}[/]; run `faultline setup` to install them")
        sys.exit(EXIT_HARNESS)


@main.command("list")
@click.option("--steps", "show_steps", is_flag=True, help="List the step kinds (built-in and registered) instead.")
@click.option("--checks", "show_checks", is_flag=True,
              help="List the checks (built-in and registered) with the Expect field that turns each on.")
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None,
              help="Also load the step modules this target definition names.")
def list_scenarios(show_steps: bool, show_checks: bool, target_path: str | None) -> None:
    """List the scenarios with their one-line descriptions (or every step kind, or every check)."""
    from pathlib import Path

    from harness.catalogue.registry import discover
    from harness.model.target import BUNDLED

    load_target(Path(target_path) if target_path else BUNDLED)  # registers its step modules
    if show_steps:
        make_console(stderr=False).print(steps_table())
        return
    if show_checks:
        make_console(stderr=False).print(checks_table())
        return
    table = table_of("Faultline scenarios", ("scenario", "description", "catches", "incident"))
    for scenario in discover().values():
        table.add_row(scenario.name, scenario.description, ", ".join(scenario.catches), scenario.incident or "")
    make_console(stderr=False).print(table)


@main.command()
@click.argument("scenarios", nargs=-1)
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None,
              help="Target definition (default: the bundled exporter's).")
@click.option("--out", type=WritableDir(), default=None, help="Report directory.")
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Run everything N times; any verdict that differs between runs fails the gate.")
@click.option("--load-workers", type=click.IntRange(0, 64), default=None,
              help="Run every Locust load step in distributed mode with this many worker processes.")
@click.option("--keep", "keep", flag_value="always", default="never",
              help="Leave the stack and every scenario's data up afterwards, for a recount, until Ctrl-C.")
@click.option("--keep-on-failure", "keep", flag_value="on_failure",
              help="The same, only when the gate did not pass.")
@click.option("--replays", type=click.IntRange(0, 100), default=2, show_default=True,
              help="Replay each failing scenario this many times before writing it up: how often it fails the "
                   "same way goes into its incident file and the reports (0: not replayed).")
@click.option("-x", "--fail-fast", is_flag=True,
              help="Stop after the first violated scenario (the rest are reported not started); exit 1.")
@click.option("-j", "--jobs", type=click.IntRange(1, 16), default=None,
              help="Play this many scenarios at once, each on a stack of its own (default: chosen from the "
                   "machine's cores and memory, said in the report).")
def run(scenarios: tuple[str, ...], backend: str, target_path: str | None, out: str | None, repeat: int,
        load_workers: int | None, keep: str, replays: int, fail_fast: bool, jobs: int | None) -> None:
    """Run scenarios (all by default), side by side on -j stacks; write reports/<run-id>/.

    Ctrl-C once: the running scenario is healed, reconciled and reported, the rest are not
    started (exit 130 if nothing was violated). Twice: stop at once (report.json still written)."""
    from pathlib import Path

    from harness.catalogue.registry import select
    from harness.catalogue.scenario import with_load_workers
    from harness.model.target import BUNDLED
    from harness.play.gate import run_gate
    from harness.play.parallel import choose_jobs

    chosen = select(list(scenarios))
    if fail_fast and click.get_current_context().get_parameter_source("replays") is ParameterSource.DEFAULT:
        replays = 0  # a quick red: the failure is not replayed unless --replays says so
    if load_workers is not None:
        chosen = [with_load_workers(s, load_workers) for s in chosen]
    stacks = choose_jobs(jobs, len(chosen), backend)
    console.print(f"faultline: {len(chosen)} scenario(s) on the {backend} backend, {stacks.n} at a time "
                  f"({escape(stacks.why)})")

    def on_step(name: str, event: str, record) -> None:  # noqa: ANN001
        at = record.applied_at if event in ("applied", "interrupted") else record.removed_at
        console.print(f"  [dim]{name} t={at or 0:.1f}s {event}[/] {record.description}")

    def on_keep(where: Path) -> None:
        console.print(results_table(gate_results))
        console.print(f"[green]stack kept[/] with every scenario's data; how to reach it: {where} "
                      "(names per scenario under \"scenarios\"; psql/redis-cli/kafka clients with the "
                      "addresses in it). Ctrl-C tears it down.")

    gate_results: list = []

    def collect(result) -> None:  # noqa: ANN001
        gate_results.append(result)
        print_result(result)

    with graceful_interrupt("healing, reconciling and reporting the running scenario") as interrupt:
        gate = run_gate(chosen, Path(target_path) if target_path else BUNDLED, backend=backend,
                        out_dir=Path(out) if out else None, on_result=collect, repeat=repeat, on_step=on_step,
                        interrupt=interrupt, keep=keep, on_keep=on_keep, replays=replays, fail_fast=fail_fast,
                        jobs=stacks)
    console.print(results_table(gate.results))
    print_what_failed(gate.results)
    for result in gate.results:
        if result.rate_said:
            console.print(f"[red]{escape(result.name)}[/] {escape(result.rate_said)} replays after it failed")
    if repeat > 1:
        from harness.play.gate import consistency

        for name, signatures in consistency(gate.results).items():
            same = len(set(signatures)) == 1
            console.print(f"{'[green]identical' if same else '[red]DIFFERENT'}[/] verdicts for {name} over "
                          f"{len(signatures)} runs: {sorted(set(signatures))}")
    unstarted = [r.name for r in gate.results if r.skipped and r.skipped.startswith("not started: --fail-fast")]
    if unstarted:
        console.print(f"--fail-fast: {len(unstarted)} scenario(s) not started after the first violation")
    console.print(judged_line(gate.results))
    console.print(f"reports: {gate.out}")
    # Ctrl-C that ends a kept stack is not an interruption of the run.
    sys.exit(130 if gate.interrupted and gate.exit_code != EXIT_VIOLATION else gate.exit_code)


main.add_command(check)
main.add_command(up)
main.add_command(reproduce)
main.add_command(shrink)
main.add_command(soak)
main.add_command(explore)
main.add_command(init)
main.add_command(doctor)
main.add_command(bench)


def _mutants_explore(target: Path, out: Path, backend: str, seed: int, runs: int, only: tuple[str, ...],
                     kinds: tuple[str, ...]) -> None:
    import json as _json

    from harness.search.explore import ExplorePlan
    from harness.search.mutants import run_mutants_explore

    def on_run(label: str, progress) -> None:  # noqa: ANN001
        console.print(f"[{escape(label)}] run {progress.run} {progress.result.verdict}"
                      + "".join(f"; {escape(c.name)}" for c in progress.result.violations))

    result = run_mutants_explore(target, out, ExplorePlan(seed=seed, runs=runs, kinds=kinds), backend=backend,
                                 on_run=on_run, defects=only)
    table = table_of(f"Seeded defects found by explore (seed {seed}, at most {runs} runs each)",
                     ("defect", "found", "in run", "violated"))
    for defect, found in result.found.items():
        first = found.failures[0] if found.failures else None
        table.add_row(defect, "[green]yes[/]" if first else "[red]NO[/]", str(first.run) if first else "-",
                      ", ".join(first.violated) if first else f"none in {found.runs} runs")
    make_console(stderr=False).print(table)
    clean = result.clean
    console.print(f"clean exporter: {clean.runs} runs, "
                  + ("[green]no failure[/]" if not clean.failures else f"[red]{len(clean.failures)} failure(s)[/]"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "mutants-explore.json").write_text(_json.dumps(
        {"ok": result.ok, "clean": dataclasses.asdict(clean),
         "defects": {d: dataclasses.asdict(s) for d, s in result.found.items()}}, indent=2, default=str))
    sys.exit(EXIT_OK if result.ok else EXIT_VIOLATION)


@main.command()
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=WritableDir(), default=None)
@click.option("--explore", "use_explore", is_flag=True,
              help="Find each defect by exploring (seed, budget below) instead of with the scenarios that claim it.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=1, show_default=True)
@click.option("--explore-runs", type=click.IntRange(1, 100_000), default=80, show_default=True,
              help="Explore's budget per defect (and for the clean exporter), in runs.")
@click.option("--defect", "only", multiple=True, help="With --explore: only these defects (repeatable).")
@click.option("--kinds", default=None,
              help="With --explore: comma-separated step kinds to draw from (default: every one).")
@click.option("-j", "--jobs", type=click.IntRange(1, 16), default=None,
              help="Play this many scenarios at once, each on a stack of its own (default: chosen from the "
                   "machine). --explore plays on one stack.")
def mutants(backend: str, target_path: str | None, out: str | None, use_explore: bool, seed: int,
            explore_runs: int, only: tuple[str, ...], kinds: str | None, jobs: int | None) -> None:
    """Every seeded defect must be caught by a scenario that claims it (or, with --explore, found by
    exploring with no scenario named); the clean exporter must pass."""
    import json as _json
    from pathlib import Path

    from harness.catalogue.registry import discover
    from harness.model.target import BUNDLED
    from harness.paths import reports_dir
    from harness.play.gate import new_run_id
    from harness.play.parallel import choose_jobs
    from harness.search.mutants import run_mutants

    out_dir = Path(out) if out else reports_dir() / f"mutants-{new_run_id()}"
    if (only or kinds) and not use_explore:
        raise click.UsageError("--defect and --kinds choose what --explore explores: give --explore too")
    if use_explore:
        _mutants_explore(Path(target_path) if target_path else BUNDLED, out_dir, backend, seed, explore_runs, only,
                         tuple(k.strip() for k in kinds.split(",")) if kinds else ())
    scenarios = list(discover().values())
    stacks = choose_jobs(jobs, len(scenarios), backend)
    console.print(f"faultline mutants: {stacks.n} scenario(s) at a time ({escape(stacks.why)})")
    result = run_mutants(scenarios, Path(target_path) if target_path else BUNDLED, out_dir,
                         backend=backend, on_result=lambda label, r: print_result(r, f"[{label}] "), jobs=stacks)
    table = table_of("Seeded defects", ("defect", "caught", "caught by", "violation seen"))
    for d in result.defects:
        table.add_row(d.defect, "[green]yes[/]" if d.caught else "[red]NO[/]", ", ".join(d.caught_by) or "-",
                      (d.violations[0] if d.violations else "; ".join(d.errors) or "-")[:300])
    make_console(stderr=False).print(table)
    clean_ok = all(r.verdict is Verdict.PASS for r in result.clean)
    console.print(f"clean exporter: {'[green]all scenarios pass[/]' if clean_ok else '[red]FAILS[/]'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "mutants.json").write_text(_json.dumps({
        "ok": result.ok, "clean": [r.to_dict() for r in result.clean],
        "defects": [d.__dict__ | {"caught": d.caught} for d in result.defects]}, indent=2, default=str))
    sys.exit(EXIT_OK if result.ok else EXIT_VIOLATION)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be undone.")
def clean(dry_run: bool) -> None:
    """Undo what killed faultline runs left: their processes (only when pid and start time match),
    tmpfs mounts, immutable flags and stack directories. Runs also do this when they start."""
    from harness.infra.reaper import reap

    done = reap(dry_run=dry_run)
    for line in done:
        console.print(escape(line), soft_wrap=True)
    console.print(f"{len(done)} thing(s) {'to undo' if dry_run else 'undone'}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def report(run_dir: str) -> None:
    """Regenerate RUN_DIR/report.html from RUN_DIR/report.json."""
    from pathlib import Path

    from harness.report.reports import write_html

    console.print(f"wrote {write_html(Path(run_dir))}")


@main.command()
@click.argument("run_a", type=click.Path(file_okay=False))
@click.argument("run_b", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
@click.option("--fail-on", "fail_on", type=click.Choice(["regression"]), default=None,
              help="Exit 1 when a scenario went from holding to failing, or its recovery slowed past the factor.")
@click.option("--recovery-factor", type=FiniteFloat(1.0, 1000.0), default=2.0, show_default=True,
              help="With --fail-on regression: how much slower a recovery may get.")
def compare(run_a: str, run_b: str, as_json: bool, fail_on: str | None, recovery_factor: float) -> None:
    """What changed from RUN_A to RUN_B: verdicts (every repeat round), throughput under each
    fault, recovery times; with --fail-on regression, a CI gate between two releases."""
    import json as _json
    from pathlib import Path

    from harness.report.compare import compare as diff
    from harness.report.compare import load, regressions

    rows = diff(load(Path(run_a)), load(Path(run_b)))
    worse = regressions(rows, recovery_factor)
    if as_json:
        click.echo(_json.dumps([dataclasses.asdict(r) | {"verdict_changed": r.verdict_changed} for r in rows],
                               indent=2))
    else:
        console.print(comparison_table(rows, f"{run_a} -> {run_b}"))
    for line in worse:
        console.print(f"[red]regression[/]: {escape(line)}")
    sys.exit(EXIT_VIOLATION if fail_on == "regression" and worse else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
