"""Commands around incident files: replay one (``reproduce``), minimise one (``shrink``), and
write one from a seeded random schedule run for a long time (``soak``)."""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from harness.backends.factory import BACKENDS
from harness.cli.base import EXIT_OK, EXIT_VIOLATION, FiniteFloat, WritableDir, defect_env, graceful_interrupt, pairs
from harness.cli.output import checkpoint_table, console, print_result, results_table, trend_table
from harness.model.plugins import load_target
from harness.report.result import Verdict


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Run it N times on one stack and print the rate it failed the way the file says.")
@click.option("--defect", default=None, help="Switch on one of the target's seeded defects for the replay.")
@click.option("--record", is_flag=True,
              help="Write the measured rate, the versions and the seed into FILE's [reproduction] table.")
@click.option("--amplify", "amplify_runs", type=click.IntRange(1, 100_000), default=None, metavar="RUNS",
              help="When it fails fewer than 9 of 10 repeats, spend up to RUNS runs finding a variant that fails "
                   "more often the same way; written beside FILE as .amp.toml with its rate.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=WritableDir(), default=None, help="Report directory.")
def reproduce(file: str, repeat: int, defect: str | None, record: bool, amplify_runs: int | None, backend: str,
              target_path: str | None, out: str | None) -> None:
    """Run the incident file FILE: exit 1 when it fails (every repeat the same way, or flaky: the rate says
    which), 0 when it held every time, 2 for a harness failure or a bad file. With --amplify, a rare
    failure is made a frequent one first (exit 1 when the variant fails at least 9 of 10 times)."""
    from pathlib import Path

    from harness.catalogue import incident
    from harness.model.target import BUNDLED
    from harness.play.gate import run_gate
    from harness.search.reproduce import RepeatOutcome

    scenario = incident.load(Path(file))
    if amplify_runs is not None:
        sys.exit(_amplify(Path(file), scenario, repeat, amplify_runs, defect, backend, target_path))
    if scenario.reproduction is not None:
        console.print(f"{escape(file)}: confirmed {scenario.reproduction.rate} with faultline "
                      f"{scenario.reproduction.faultline_version or '?'} on {scenario.reproduction.target or '?'}")
    gate = run_gate([scenario], Path(target_path) if target_path else BUNDLED, backend=backend,
                    out_dir=Path(out) if out else None, on_result=print_result, repeat=repeat,
                    extra_env=defect_env(target_path, defect))
    console.print(results_table(gate.results))
    outcome = RepeatOutcome.of(scenario, gate.results)
    colour = "red" if outcome.exit_code == 1 else "green" if outcome.exit_code == 0 else "yellow"
    console.print(f"[{colour}]{escape(outcome.summary())}[/]")
    if record and outcome.exit_code != 2:
        from harness.search.reproduce import record_rate

        record_rate(Path(file), scenario, outcome, gate, defect)
        console.print(f"recorded reproduced = {outcome.rate!r} in {escape(file)}")
    console.print(f"reports: {gate.out}")
    sys.exit(outcome.exit_code)


def _amplify(path: object, scenario: object, repeat: int, budget: int, defect: str | None, backend: str,
             target_path: str | None) -> int:
    """``reproduce --amplify``: run the file ``repeat`` times (at least AMPLIFY_REPLAYS); "the same
    way" is what its first failing run violated (or, when none failed, what its [reproduction]
    table says it violates); then, below 9 of 10, amplify it. Exit 1 when it failed (the rates
    say how reliably), 0 when it held every time with nothing to amplify, 2 on a harness error."""
    import tempfile
    from pathlib import Path

    from harness.backends.factory import make_backend
    from harness.catalogue.scenario import Scenario
    from harness.infra.versions import server_versions
    from harness.model.target import BUNDLED
    from harness.play.runner import ScenarioRunner
    from harness.report.rates import FailureShape, Rate
    from harness.report.result import ScenarioResult
    from harness.search.handover import Measuring, hand_over

    assert isinstance(path, Path) and isinstance(scenario, Scenario)
    target = load_target(Path(target_path) if target_path else BUNDLED)
    env = defect_env(target_path, defect)
    told = scenario.reproduction.violates if scenario.reproduction is not None else ()
    with make_backend(backend, logical_replication=target.postgres_logical_replication,
                      redis_sentinel=target.redis_discovery == "sentinel") as stack, \
            tempfile.TemporaryDirectory(prefix="faultline-amplify-") as work:
        def run_once(candidate: Scenario) -> ScenarioResult:
            return ScenarioRunner(stack, target, candidate, Path(work), extra_env=env).run()

        results = []
        for n in range(max(AMPLIFY_REPLAYS, repeat)):
            results.append(run_once(scenario))
            console.print(f"  run {n + 1}: {results[-1].verdict}")
        if any(r.verdict is Verdict.ERROR for r in results):
            console.print("[yellow]a run could not be judged (harness error): no rate, nothing amplified[/]")
            return 2
        first = next((r for r in results if r.verdict is Verdict.FAIL), None)
        shape = FailureShape.of(first) if first is not None else FailureShape(frozenset(told)) if told else None
        if shape is None:
            console.print(f"held {len(results)} of {len(results)} runs and the file names no checks it violates: "
                          "nothing to amplify")
            return EXIT_OK
        rate = Rate(sum(shape.matches(r) for r in results), len(results))
        how = Measuring(run_once, target, server_versions(stack), defect, amplify_runs=budget,
                        log=lambda m: console.print(f"  [dim]{escape(m)}[/]"))
        handed = hand_over(scenario, shape, path, how, measured=rate)
    console.print(f"{escape(str(path))}: {escape(handed.said())}")
    if handed.amplified_path is not None:
        console.print(f"amplified incident: {escape(str(handed.amplified_path))}")
    return 1 if rate.failed or handed.amplified_path is not None else EXIT_OK


AMPLIFY_REPLAYS = 5  # fresh replays measured before amplifying, at the least (--repeat for more)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Where to write the minimal incident file (default: FILE with .min.toml).")
@click.option("--confirm-runs", type=click.IntRange(1, 20), default=3, show_default=True,
              help="A reduction is kept only when it fails this many times out of as many, the original's way.")
@click.option("--replays", type=click.IntRange(1, 100), default=5, show_default=True,
              help="The minimum is replayed this many times before it is written; any pass: fall back.")
@click.option("--defect", default=None, help="Switch on one of the target's seeded defects while shrinking.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
def shrink(file: str, out_file: str | None, confirm_runs: int, replays: int, defect: str | None, backend: str,
           target_path: str | None) -> None:
    """Cut the failing incident FILE down to the fewest steps, shortest windows and least load that still
    fail, every time: exit 0 when the minimum failed every replay, 1 when even the original did not."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from harness.backends.factory import make_backend
    from harness.catalogue import incident
    from harness.catalogue.scenario import Scenario
    from harness.infra.versions import server_versions
    from harness.model.target import BUNDLED
    from harness.play.gate import reproduction_record
    from harness.play.runner import ScenarioRunner
    from harness.report.result import ScenarioResult
    from harness.search.shrink import shrink as minimise

    scenario = incident.load(Path(file))
    target = load_target(Path(target_path) if target_path else BUNDLED)
    env = defect_env(target_path, defect)
    logical = target.postgres_logical_replication
    with make_backend(backend, logical_replication=logical,
                      redis_sentinel=target.redis_discovery == "sentinel") as stack, \
            tempfile.TemporaryDirectory(prefix="faultline-shrink-") as work:
        def run_once(candidate: Scenario) -> ScenarioResult:
            return ScenarioRunner(stack, target, candidate, Path(work), extra_env=env).run()

        found = minimise(scenario, run_once, log=lambda m: console.print(escape(m)), confirm_runs=confirm_runs,
                         replays=replays)
        servers = server_versions(stack)
    record = dataclasses.replace(
        reproduction_record(ScenarioResult(found.scenario.name, "", None), target, servers,
                            found.scenario.workload.seed, found.replay_failed, found.replays, defect),
        violates=tuple(sorted(found.stable)))
    destination = Path(out_file) if out_file else Path(file).with_suffix(".min.toml")
    incident.write(dataclasses.replace(found.scenario, reproduction=record), destination, comment=(
        f"Shrunk from {file} in {found.trials} runs; violates {', '.join(sorted(found.stable))} "
        f"in {record.rate} replays (each reduction kept only when it failed {confirm_runs}/{confirm_runs})"))
    console.print(f"minimal incident: {len(found.scenario.steps)} step(s), {found.scenario.workload.records} records, "
                  f"failed {record.rate} replays -> {destination}")
    if found.replay_failed < found.replays:
        console.print(f"[red]not even the original failed every replay ({record.rate}): the incident is flaky here[/]")
        sys.exit(1)


@click.command()
@click.option("--duration", default="10m", show_default=True, help="How long the fault schedule runs: 600, 90s, 10m.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=1, show_default=True,
              help="Same seed, same schedule.")
@click.option("--faults", default=None, help="Comma-separated catalogue names to draw from (default: all).")
@click.option("--rate", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="Records per second written by the harness.")
@click.option("--load-users", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="Locust source-writer users on top of the rate, for the whole soak.")
@click.option("--load-workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Run the Locust load in distributed mode with this many worker processes.")
@click.option("--window-scale", type=FiniteFloat(0.01, 100), default=1.0, show_default=True,
              help="Scale every fault window (2.0: twice as long).")
@click.option("--knob", "knobs", multiple=True, metavar="NAME=VALUE",
              help="A harness knob for the soak (repeatable; the target's [knobs] maps it), kept in the incident file.")
@click.option("--exporter-env", multiple=True, metavar="KEY=VALUE",
              help="Raw environment for the exporter under soak (repeatable; target-specific: prefer --knob).")
@click.option("--plan-only", is_flag=True, help="Print the schedule as an incident file and stop.")
@click.option("--change-rate", type=click.IntRange(0, 100_000), default=None,
              help="Changes a second beside the records (updates, deletes, key changes, transactions), judged per "
                   "row [default: 10 when the target carries changes, else 0].")
@click.option("--replays", type=click.IntRange(0, 100), default=2, show_default=True,
              help="When the soak fails, run it again this many times before writing it up (each as long as "
                   "the soak): how often it fails the same way goes into its incident file (0: not replayed).")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=WritableDir(), default=None, help="Report directory.")
def soak(duration: str, seed: int, faults: str | None, rate: int, load_users: int, load_workers: int,
         window_scale: float, knobs: tuple[str, ...], exporter_env: tuple[str, ...], plan_only: bool,
         change_rate: int | None, replays: int, backend: str, target_path: str | None, out: str | None) -> None:
    """Continuous workload under a seeded random fault schedule, with checkpoints and a resource monitor.

    Ctrl-C once: the schedule stops, faults are healed, the run is reconciled and reported
    (exit 130 if nothing was violated). Twice: stop at once.
    """
    from pathlib import Path

    from harness.backends.factory import make_backend
    from harness.catalogue import incident
    from harness.model.target import BUNDLED, TargetDefinition
    from harness.play.gate import run_gate
    from harness.search.soak import SoakPlan, available, parse_duration, schedule

    target = TargetDefinition.load(Path(target_path) if target_path else BUNDLED)
    runner = make_backend(backend)

    def lacks(step: object) -> str | None:
        return runner.unsupported(step) or target.unsupported(step) or target.idle_for(step)

    plan = SoakPlan(parse_duration(duration), seed, tuple(f.strip() for f in faults.split(",")) if faults
                    else available(lacks), rate=rate, load_users=load_users, load_workers=load_workers,
                    window_scale=window_scale, exporter_env=pairs(exporter_env, "--exporter-env"),
                    knobs=pairs(knobs, "--knob"),
                    change_rate=change_rate if change_rate is not None else 10 if target.changes is not None else 0)
    scenario = schedule(plan)
    if plan_only:
        click.echo(incident.dumps(scenario, f"faultline soak --duration {duration} --seed {seed}"))
        return
    console.print(f"faultline soak: {scenario.description}")

    def on_step(name: str, event: str, record) -> None:  # noqa: ANN001
        at = record.applied_at if event in ("applied", "interrupted") else record.removed_at
        console.print(f"  [dim]t={at:.1f}s {event}[/] {record.description}")

    with graceful_interrupt("healing faults, reconciling, writing the report") as interrupt:
        gate = run_gate([scenario], Path(target_path) if target_path else BUNDLED, backend=backend,
                        out_dir=Path(out) if out else None, on_result=print_result, on_step=on_step,
                        interrupt=interrupt, replays=replays)
    result = gate.results[0]
    console.print(checkpoint_table(result))
    if result.resources is not None:
        console.print(trend_table(result.resources))
        if result.resources.not_judged:
            console.print(f"resources not judged: {escape(result.resources.not_judged)}")
    console.print(f"reports: {gate.out}")
    if result.verdict is Verdict.FAIL:
        console.print(f"incident file: {gate.out / 'incidents' / (result.name + '.toml')} "
                      + (f"({escape(result.rate_said)} replays; " if result.rate_said else "(")
                      + "faultline reproduce --amplify / faultline shrink)")
    code = gate.exit_code
    sys.exit(130 if code != EXIT_VIOLATION and result.interrupted else code)
