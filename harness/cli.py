"""The ``faultline`` command.

Exit codes everywhere: 0 all held, 1 an invariant of the system under test was violated,
2 the harness itself failed (missing binary, bad input, a server that would not start).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.backends.factory import BACKENDS, make_backend
from harness.errors import FaultlineError
from harness.lifecycle import TerminatedBySignal, unwind_on_termination
from harness.provision import Installed, check_all, provision_all

EXIT_OK, EXIT_VIOLATION, EXIT_HARNESS = 0, 1, 2

console = Console(stderr=True)


class FiniteFloat(click.ParamType):
    """A float within [low, high]: NaN and infinities are refused (a NaN compares false with any
    bound, so click's FloatRange lets it through)."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r} is not a finite number within [{self.low}, {self.high}]", param, ctx)
        return number


class FaultlineGroup(click.Group):
    """Any FaultlineError becomes a one-line message and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FaultlineError as exc:
            # Escaped (a message may hold [incident] or [metrics]: text, not markup) and unwrapped:
            # one line, file:line:field first, whatever the terminal's width.
            console.print(f"[bold red]faultline: error:[/] {escape(str(exc))}", soft_wrap=True)
            sys.exit(EXIT_HARNESS)
        except KeyboardInterrupt as exc:
            # Ctrl-C exits 130; SIGTERM and SIGHUP exit 128 + their number, as a shell expects.
            signum = exc.signum if isinstance(exc, TerminatedBySignal) else signal.SIGINT
            console.print(f"[yellow]faultline: {signal.Signals(signum).name}; everything started was stopped[/]")
            sys.exit(128 + signum)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - a harness bug must exit 2, never 1 (which means a violation)
            console.print_exception()
            console.print("[bold red]faultline: internal error[/] (exit 2: the harness failed, not the exporter)")
            sys.exit(EXIT_HARNESS)


@click.group(cls=FaultlineGroup)
@click.version_option(package_name="faultline")
def main() -> None:
    """Faultline: chaos harness and verification suite for data exporters."""
    unwind_on_termination()


def _table(found: dict[str, Installed | None]) -> Table:
    table = Table(title="Faultline servers")
    for column in ("component", "status", "version", "source", "path"):
        table.add_column(column)
    for name, item in found.items():
        if item is None:
            table.add_row(name, "[red]missing[/]", "", "", "")
        else:
            table.add_row(name, "[green]present[/]", item.version, item.source, item.path)
    return table


@main.command()
@click.option("--check", is_flag=True, help="Only report what is present; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def setup(check: bool, as_json: bool) -> None:
    """Find or install (and cache) PostgreSQL, Redis, Java, Kafka and Toxiproxy."""
    if check:
        found = check_all()
    else:
        with console.status("provisioning servers") as status:
            def log(message: str) -> None:
                status.update(message)
                console.log(message)

            found = dict(provision_all(log, on_done=lambda item: console.log(f"{item.name}: {item.version}")))
    if as_json:
        click.echo(json.dumps({k: (v.to_dict() if v else None) for k, v in found.items()}, indent=2))
    else:
        console.print(_table(found))
    missing = [name for name, item in found.items() if item is None]
    if missing:
        console.print(f"[red]missing: {', '.join(missing)}[/]; run `faultline setup` to install them")
        sys.exit(EXIT_HARNESS)


@main.command()
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--check", is_flag=True,
              help="Start, verify every service through its proxy, stop, print one JSON object.")
@click.option("--start-timeout", type=FiniteFloat(1, 3600), default=60.0, show_default=True)
def up(backend: str, check: bool, start_timeout: float) -> None:
    """Start the stack and print its endpoints until Ctrl-C."""
    from harness.services import probes
    from harness.stack import LINKS

    with make_backend(backend, start_timeout=start_timeout) as stack:
        if check:
            ready = {
                "postgres": probes.postgres_ready(stack.postgres.proxied.host, stack.postgres.proxied.port,
                                                  stack.postgres_user, stack.postgres_password,
                                                  stack.postgres_database),
                "redis": probes.redis_ready(stack.redis.proxied.host, stack.redis.proxied.port,
                                            stack.redis_password),
                "kafka": probes.kafka_ready(stack.kafka_bootstrap(proxied=True)),
                "toxiproxy": bool(stack.toxiproxy.version()),
            }
            result = {
                "ok": all(ready.values()),
                "services": {name: {"ready": ready[name],
                                    "start_seconds": round(stack.start_seconds.get(name, 0.0), 3),
                                    **({"direct": stack.link(name).direct.address,
                                        "proxied": stack.link(name).proxied.address} if name in LINKS
                                       else {"api": stack.toxiproxy_api.address})}
                             for name in ready},
                "total_start_seconds": round(stack.start_seconds["total"], 3),
            }
            click.echo(json.dumps(result))
            if not result["ok"]:
                sys.exit(EXIT_HARNESS)
            return
        described = stack.describe()
        described["postgres_dsn"] = stack.postgres_dsn()
        described["redis_url"] = stack.redis_url()
        described["kafka_bootstrap"] = stack.kafka_bootstrap()
        click.echo(json.dumps(described, indent=2), nl=True)
        console.print("[green]stack is up[/]; Ctrl-C stops it")
        stop = threading.Event()
        while not stop.wait(3600):  # woken by Ctrl-C/SIGTERM as KeyboardInterrupt
            continue


def _print_result(result, prefix: str = "") -> None:  # noqa: ANN001
    colour = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "cyan"}[result.verdict]
    console.print(f"{prefix}[{colour}]{result.verdict.upper():5}[/] {result.name} ({result.duration_s:.1f}s)")
    for check in result.violations:
        console.print(f"      [red]✗ {check.name}[/]: {check.detail}")
    if result.error:
        label = "skipped" if result.verdict == "skipped" else "harness error"
        console.print(f"      [yellow]{label}[/]: {result.error}")


def _steps_table() -> Table:
    """Every registered step kind: its name in incident files, role, module and parameters."""
    import dataclasses

    from harness.steps import registered

    table = Table(title="Faultline step kinds")
    for column in ("kind", "role", "module", "parameters", "what it does"):
        table.add_column(column)
    for name, cls in sorted(registered().items()):
        params = ", ".join(
            f"{f.name}" + ("" if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                           else f"={f.default!r}" if f.default is not dataclasses.MISSING else "={}")
            for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        doc = " ".join((cls.__doc__ or "").split()).split(". ")[0]
        table.add_row(name, cls.role, cls.__module__, escape(params), escape(doc))
    return table


def _results_table(results: list) -> Table:  # noqa: ANN001
    table = Table(title="Faultline verdicts")
    for column in ("scenario", "verdict", "lost", "corrupted", "dead-lettered", "duplicates", "recovery", "duration"):
        table.add_column(column)
    colour = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "cyan"}
    for r in results:
        counts = r.ledger.get("counts", {})
        table.add_row(r.name, f"[{colour[r.verdict]}]{r.verdict}[/]", str(counts.get("lost", 0)),
                      str(counts.get("delivered_corrupted", 0)), str(counts.get("dead_lettered", 0)),
                      str(r.ledger.get("duplicates", 0)), "-" if r.recovery_s is None else f"{r.recovery_s:.1f}s",
                      f"{r.duration_s:.1f}s")
    return table


@main.command("list")
@click.option("--steps", "show_steps", is_flag=True, help="List the step kinds (built-in and registered) instead.")
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None,
              help="Also load the step modules this target definition names.")
def list_scenarios(show_steps: bool, target_path: str | None) -> None:
    """List the scenarios with their one-line descriptions (or, with --steps, every step kind)."""
    from pathlib import Path

    from harness.registry import discover
    from harness.target import BUNDLED, TargetDefinition

    TargetDefinition.load(Path(target_path) if target_path else BUNDLED)  # registers its step modules
    if show_steps:
        Console(soft_wrap=True).print(_steps_table())
        return
    table = Table(title="Faultline scenarios")
    for column in ("scenario", "description", "catches", "incident"):
        table.add_column(column)
    for scenario in discover().values():
        table.add_row(scenario.name, scenario.description, ", ".join(scenario.catches), scenario.incident or "")
    Console().print(table)


@main.command()
@click.argument("scenarios", nargs=-1)
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None,
              help="Target definition (default: the bundled exporter's).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Report directory.")
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Run everything N times; any verdict that differs between runs fails the gate.")
@click.option("--load-workers", type=click.IntRange(0, 64), default=None,
              help="Run every Locust load step in distributed mode with this many worker processes.")
def run(scenarios: tuple[str, ...], backend: str, target_path: str | None, out: str | None, repeat: int,
        load_workers: int | None) -> None:
    """Run scenarios (all by default) on one stack; write reports/<run-id>/."""
    from pathlib import Path

    from harness.gate import run_gate
    from harness.registry import select
    from harness.scenario import with_load_workers
    from harness.target import BUNDLED

    chosen = select(list(scenarios))
    if load_workers is not None:
        chosen = [with_load_workers(s, load_workers) for s in chosen]
    console.print(f"faultline: {len(chosen)} scenario(s) on the {backend} backend")

    def on_step(name: str, event: str, record) -> None:  # noqa: ANN001
        at = record.applied_at if event == "applied" else record.removed_at
        console.print(f"  [dim]{name} t={at:.1f}s {event}[/] {record.description}")

    gate = run_gate(chosen, Path(target_path) if target_path else BUNDLED, backend=backend,
                    out_dir=Path(out) if out else None, on_result=_print_result, repeat=repeat, on_step=on_step)
    console.print(_results_table(gate.results))
    if repeat > 1:
        from harness.gate import consistency

        for name, signatures in consistency(gate.results).items():
            same = len(set(signatures)) == 1
            console.print(f"{'[green]identical' if same else '[red]DIFFERENT'}[/] verdicts for {name} over "
                          f"{len(signatures)} runs: {sorted(set(signatures))}")
    console.print(f"reports: {gate.out}")
    sys.exit(gate.exit_code)


def _pairs(items: tuple[str, ...], option: str) -> tuple[tuple[str, str], ...]:
    """KEY=VALUE options as pairs; anything else is bad input (exit 2, naming the option)."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: write KEY=VALUE", param_hint=option)
        pairs.append((key.strip(), value))
    return tuple(pairs)


def _defect_env(target_path: str | None, defect: str | None) -> dict[str, str]:
    """The exporter environment that switches a seeded defect on (through the target's defect_env)."""
    from pathlib import Path

    from harness.errors import HarnessError
    from harness.target import BUNDLED, TargetDefinition

    if defect is None:
        return {}
    target = TargetDefinition.load(Path(target_path) if target_path else BUNDLED)
    if defect not in target.defects:
        raise HarnessError(f"--defect {defect!r}: target {target.name} declares {', '.join(target.defects) or 'none'}")
    return {target.defect_env: defect}


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--repeat", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Run it N times on one stack and print the rate it failed the way the file says.")
@click.option("--defect", default=None, help="Switch on one of the target's seeded defects for the replay.")
@click.option("--record", is_flag=True,
              help="Write the measured rate, the versions and the seed into FILE's [reproduction] table.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Report directory.")
def reproduce(file: str, repeat: int, defect: str | None, record: bool, backend: str, target_path: str | None,
              out: str | None) -> None:
    """Run the incident file FILE: exit 1 when it fails (every repeat the same way, or flaky: the rate says
    which), 0 when it held every time, 2 for a harness failure or a bad file."""
    from pathlib import Path

    from harness import incident
    from harness.gate import run_gate
    from harness.reproduce import RepeatOutcome
    from harness.target import BUNDLED

    scenario = incident.load(Path(file))
    if scenario.reproduction is not None:
        console.print(f"{escape(file)}: confirmed {scenario.reproduction.rate} with faultline "
                      f"{scenario.reproduction.faultline_version or '?'} on {scenario.reproduction.target or '?'}")
    gate = run_gate([scenario], Path(target_path) if target_path else BUNDLED, backend=backend,
                    out_dir=Path(out) if out else None, on_result=_print_result, repeat=repeat,
                    extra_env=_defect_env(target_path, defect))
    console.print(_results_table(gate.results))
    outcome = RepeatOutcome.of(scenario, gate.results)
    colour = "red" if outcome.exit_code == 1 else "green" if outcome.exit_code == 0 else "yellow"
    console.print(f"[{colour}]{escape(outcome.summary())}[/]")
    if record and outcome.exit_code != 2:
        from harness.reproduce import record_rate

        record_rate(Path(file), scenario, outcome, gate, defect)
        console.print(f"recorded reproduced = {outcome.rate!r} in {escape(file)}")
    console.print(f"reports: {gate.out}")
    sys.exit(outcome.exit_code)


@main.command()
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

    from harness import incident
    from harness.backends.factory import make_backend
    from harness.gate import reproduction_record
    from harness.runner import ScenarioResult, ScenarioRunner
    from harness.scenario import Scenario
    from harness.shrink import shrink as minimise
    from harness.target import BUNDLED, TargetDefinition
    from harness.versions import server_versions

    scenario = incident.load(Path(file))
    target = TargetDefinition.load(Path(target_path) if target_path else BUNDLED)
    env = _defect_env(target_path, defect)
    with make_backend(backend) as stack, tempfile.TemporaryDirectory(prefix="faultline-shrink-") as work:
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


@main.command()
@click.option("--duration", default="10m", show_default=True, help="How long the fault schedule runs: 600, 90s, 10m.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same schedule.")
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
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Report directory.")
def soak(duration: str, seed: int, faults: str | None, rate: int, load_users: int, load_workers: int,
         window_scale: float, knobs: tuple[str, ...], exporter_env: tuple[str, ...], plan_only: bool, backend: str,
         target_path: str | None, out: str | None) -> None:
    """Continuous workload under a seeded random fault schedule, with checkpoints and a resource monitor.

    Ctrl-C once: the schedule stops, faults are healed, the run is reconciled and reported
    (exit 130 if nothing was violated). Twice: stop at once.
    """
    import signal
    from pathlib import Path

    from harness import incident
    from harness.gate import run_gate
    from harness.soak import CATALOGUE, SoakPlan, parse_duration, schedule
    from harness.target import BUNDLED

    plan = SoakPlan(parse_duration(duration), seed, tuple(f.strip() for f in faults.split(",")) if faults
                    else tuple(CATALOGUE), rate=rate, load_users=load_users, load_workers=load_workers,
                    window_scale=window_scale, exporter_env=_pairs(exporter_env, "--exporter-env"),
                    knobs=_pairs(knobs, "--knob"))
    scenario = schedule(plan)
    if plan_only:
        click.echo(incident.dumps(scenario, f"faultline soak --duration {duration} --seed {seed}"))
        return
    interrupt = threading.Event()

    def first_ctrl_c(_signum: int, _frame: object) -> None:
        console.print("[yellow]interrupted: healing faults, reconciling, writing the report "
                      "(Ctrl-C again to stop at once)[/]")
        interrupt.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first_ctrl_c)
    console.print(f"faultline soak: {scenario.description}")

    def on_step(name: str, event: str, record) -> None:  # noqa: ANN001
        at = record.applied_at if event in ("applied", "interrupted") else record.removed_at
        console.print(f"  [dim]t={at:.1f}s {event}[/] {record.description}")

    try:
        gate = run_gate([scenario], Path(target_path) if target_path else BUNDLED, backend=backend,
                        out_dir=Path(out) if out else None, on_result=_print_result, on_step=on_step,
                        interrupt=interrupt)
    finally:
        signal.signal(signal.SIGINT, previous)
    result = gate.results[0]
    table = Table(title="Checkpoints")
    for column in ("t", "written", "not yet settled", "in buffer", "corrupted"):
        table.add_column(column)
    for point in result.checkpoints:
        table.add_row(f"{point['at']:.0f}s", str(point["written"]), str(point["missing"]), str(point["in_flight"]),
                      str(point["corrupted"]))
    console.print(table)
    trends = Table(title="Exporter resources (fitted trend per process lifetime)")
    for column in ("pid", "quantity", "start", "end", "per minute", "leak"):
        trends.add_column(column)
    for trend in result.resources.get("trends", []):
        trends.add_row(str(trend["pid"]), trend["quantity"], f"{trend['start']:.1f}", f"{trend['end']:.1f}",
                       f"{trend['slope_per_min']:+.2f}", "[red]yes[/]" if trend["leak"] else "no")
    console.print(trends)
    if result.resources.get("not_judged"):
        console.print(f"resources not judged: {result.resources['not_judged']}")
    console.print(f"reports: {gate.out}")
    if result.verdict == "fail":
        console.print(f"incident file: {gate.out / 'incidents' / (result.name + '.toml')} "
                      "(faultline reproduce / faultline shrink)")
    code = gate.exit_code
    sys.exit(130 if code == EXIT_OK and result.interrupted else code)


@main.command()
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--target", "target_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), default=None)
def mutants(backend: str, target_path: str | None, out: str | None) -> None:
    """Every seeded defect must be caught by a scenario that claims it; the clean exporter must pass."""
    import json as _json
    from pathlib import Path

    from harness.gate import new_run_id
    from harness.mutants import run_mutants
    from harness.paths import reports_dir
    from harness.registry import discover
    from harness.target import BUNDLED

    out_dir = Path(out) if out else reports_dir() / f"mutants-{new_run_id()}"
    result = run_mutants(list(discover().values()), Path(target_path) if target_path else BUNDLED, out_dir,
                         backend=backend, on_result=lambda label, r: _print_result(r, f"[{label}] "))
    table = Table(title="Seeded defects")
    for column in ("defect", "caught", "caught by", "violation seen"):
        table.add_column(column, overflow="fold")
    for d in result.defects:
        table.add_row(d.defect, "[green]yes[/]" if d.caught else "[red]NO[/]", ", ".join(d.caught_by) or "-",
                      (d.violations[0] if d.violations else "; ".join(d.errors) or "-")[:300])
    Console(width=200).print(table)
    clean_ok = all(r.verdict == "pass" for r in result.clean)
    console.print(f"clean exporter: {'[green]all scenarios pass[/]' if clean_ok else '[red]FAILS[/]'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "mutants.json").write_text(_json.dumps({
        "ok": result.ok, "clean": [r.to_dict() for r in result.clean],
        "defects": [d.__dict__ | {"caught": d.caught} for d in result.defects]}, indent=2, default=str))
    sys.exit(EXIT_OK if result.ok else EXIT_VIOLATION)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def report(run_dir: str) -> None:
    """Regenerate RUN_DIR/report.html from RUN_DIR/report.json."""
    from pathlib import Path

    from harness.reports import write_html

    console.print(f"wrote {write_html(Path(run_dir))}")


@main.command()
@click.argument("run_a", type=click.Path(file_okay=False))
@click.argument("run_b", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
def compare(run_a: str, run_b: str, as_json: bool) -> None:
    """What changed from RUN_A to RUN_B: verdicts, throughput under each fault, recovery times."""
    import json as _json
    from pathlib import Path

    from harness.compare import compare as diff
    from harness.compare import load

    rows = diff(load(Path(run_a)), load(Path(run_b)))
    if as_json:
        click.echo(_json.dumps(rows, indent=2))
        return
    table = Table(title=f"{run_a} -> {run_b}")
    for column in ("scenario", "verdict", "recovery", "throughput under fault (rec/s)", "violations now"):
        table.add_column(column, overflow="fold")
    for row in rows:
        verdict = f"{row['verdict_a']} -> {row['verdict_b']}"
        if row["verdict_changed"]:
            verdict = f"[bold red]{verdict} (changed)[/]"
        recovery = f"{row['recovery_a']} -> {row['recovery_b']}"
        throughput = "; ".join(f"{fault}: {a} -> {b}" for fault, (a, b) in row["throughput_under_fault"].items())
        table.add_row(row["scenario"], verdict, recovery, throughput or "-", ", ".join(row["violations_b"]) or "-")
    Console(width=200).print(table)


@main.command()
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Directory for NAME.json.")
def bench(name: str, out: str | None) -> None:
    """Run the benchmark bench/NAME.py; writes reports/bench/NAME.json."""
    from harness.bench import run_benchmark

    t0 = time.monotonic()
    result, path = run_benchmark(name, out)
    console.print_json(json.dumps(result))
    console.print(f"wrote {path} in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":  # pragma: no cover
    main()
