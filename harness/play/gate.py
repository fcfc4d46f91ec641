"""``faultline run``: scenarios on one stack, a verdict each, and the reports.

Exit codes: 0 every invariant held, 1 an invariant was violated, 2 the harness itself failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import faultline_version
from harness.backends.factory import make_backend
from harness.catalogue import incident
from harness.catalogue.scenario import Reproduction, Scenario
from harness.errors import HarnessError
from harness.infra.stack import Stack
from harness.infra.versions import server_versions
from harness.model.plugins import load_target
from harness.model.target import TargetDefinition
from harness.paths import reports_dir
from harness.play.runner import ScenarioRunner, scenario_workdir
from harness.report.journal import StepRecord
from harness.report.rates import FailureShape, Rate
from harness.report.reports import write_all
from harness.report.result import RunReport, ScenarioResult, Verdict
from harness.services.servers import write_secret

EXIT_OK, EXIT_VIOLATION, EXIT_HARNESS = 0, 1, 2


@dataclass
class GateRun:
    run_id: str
    out: Path
    results: list[ScenarioResult]
    exit_code: int
    servers: dict[str, str] = dataclasses.field(default_factory=dict)  # versions the run was made with
    interrupted: bool = False  # Ctrl-C stopped it before every scenario ran


def exit_code_of(results: list[ScenarioResult]) -> int:
    if any(r.verdict is Verdict.ERROR for r in results):
        return EXIT_HARNESS
    if all(r.verdict is Verdict.SKIPPED for r in results):
        return EXIT_HARNESS  # nothing judged (none given, or none could run here): that is not a pass
    return EXIT_VIOLATION if any(r.verdict is Verdict.FAIL for r in results) else EXIT_OK


def run_on_stack(stack: Stack, target: TargetDefinition, scenarios: list[Scenario], work: Path,
                 extra_env: dict[str, str] | None = None,
                 on_result: Callable[[ScenarioResult], None] | None = None,
                 on_step: Callable[[str, str, StepRecord], None] | None = None,
                 interrupt: threading.Event | None = None,
                 into: list[ScenarioResult] | None = None, fail_fast: bool = False) -> list[ScenarioResult]:
    """Each scenario in turn; results are appended to ``into`` as they come (so a run stopped at
    once still has the ones that finished). ``fail_fast``: after the first violated scenario the
    rest are not started, each reported skipped with the reason."""
    results = [] if into is None else into
    for n, scenario in enumerate(scenarios):
        if interrupt is not None and interrupt.is_set():
            break  # interrupted: what ran is reported, the rest is not started
        if fail_fast and any(r.verdict is Verdict.FAIL for r in results):
            results.extend(not_started(rest, next(r.name for r in results if r.verdict is Verdict.FAIL))
                           for rest in scenarios[n:])
            break
        step_hook = (lambda event, record, name=scenario.name: on_step(name, event, record)) if on_step else None
        result = ScenarioRunner(stack, target, scenario, work, extra_env=extra_env,
                                interrupt=interrupt or threading.Event(), on_step=step_hook).run()
        results.append(result)
        if on_result:
            on_result(result)
    return results


def not_started(scenario: Scenario, failed: str) -> ScenarioResult:
    """A scenario --fail-fast did not start: skipped, and why (never a pass)."""
    return ScenarioResult(scenario.name, scenario.description, None, verdict=Verdict.SKIPPED,
                          skipped=f"not started: --fail-fast stopped the run after {failed} failed")


def measure_failures(stack: Stack, target: TargetDefinition, scenarios: list[Scenario], results: list[ScenarioResult],
                     work: Path, replays: int, extra_env: dict[str, str] | None = None,
                     interrupt: threading.Event | None = None) -> None:
    """Each failing scenario replayed ``replays`` times on the same stack before it is written up:
    of those replays, how many failed the same way (its checks, its hop of loss) goes into its
    result (``replayed``), its incident file and every report. A failure that does not replay is
    a rumour; the rate says which it is."""
    by_name = {s.name: s for s in scenarios}
    measured: dict[str, str] = {}
    for result in results:
        if result.verdict is not Verdict.FAIL or replays < 1 or result.name not in by_name:
            continue
        if result.name not in measured and not (interrupt is not None and interrupt.is_set()):
            shape = FailureShape.of(result)
            again = run_on_stack(stack, target, [by_name[result.name]] * replays, work / "replays",
                                 extra_env=extra_env, interrupt=interrupt)
            measured[result.name] = str(Rate(sum(shape.matches(r) for r in again), len(again)))
        result.replayed = measured.get(result.name, "")


def reproduction_record(result: ScenarioResult, target: TargetDefinition, servers: dict[str, str],
                        seed: int, failed: int = 1, runs: int = 1, defect: str | None = None) -> Reproduction:
    """What a failing run confirmed: its rate (one failing run is 1/1 until replayed with
    ``faultline reproduce --repeat``), the checks it violated, and the versions it ran with."""
    return Reproduction(failed, runs, tuple(sorted(c.name for c in result.violations)), faultline_version(),
                        target.name, dict(servers), seed, dt.datetime.now(dt.UTC).date().isoformat(), defect)


def write_incidents(directory: Path, scenarios: list[Scenario], results: list[ScenarioResult],
                    target: TargetDefinition, extra_env: dict[str, str] | None = None,
                    servers: dict[str, str] | None = None) -> list[Path]:
    """Every failing scenario's exact schedule, replayable with `faultline reproduce`."""
    by_name = {s.name: s for s in scenarios}
    written = []
    for result in results:
        if result.verdict is not Verdict.FAIL:
            continue
        try:
            written.append(_write_incident(directory, by_name[result.name], result, target, extra_env, servers))
        except (OSError, HarnessError) as exc:
            # The incident file is lost, not the run's other reports: they say why.
            result.report_errors.append(f"incident file for {result.name} not written: {exc}")
    return written


def _write_incident(directory: Path, scenario: Scenario, result: ScenarioResult, target: TargetDefinition,
                    extra_env: dict[str, str] | None, servers: dict[str, str] | None) -> Path:
    # The environment the exporter really had, seeded defect included, so the replay is exact.
    env = {**scenario.exporter_env, **(extra_env or {})}
    if target.defect_env in os.environ:
        env[target.defect_env] = os.environ[target.defect_env]
    failed, runs = (int(n) for n in result.replayed.split("/")) if result.replayed else (1, 1)
    exact = dataclasses.replace(scenario, exporter_env=env, reproduction=reproduction_record(
        result, target, servers or {}, scenario.workload.seed, failed, runs))
    directory.mkdir(parents=True, exist_ok=True)
    measured = (f"it {result.rate_said} replays after it failed" if result.replayed
                else "reproduced 1/1 means: failed once, not replayed")
    comment = "\n".join([f"Written by a failing run of {result.name}; replay: faultline reproduce <this file> "
                         f"--repeat 5 ({measured}; amplify a rare one with --amplify 60)",
                         *(f"violated {c.name}: {c.detail[:200]}" for c in result.violations),
                         *(f"records meeting {r.description}: {r.in_flight_at_apply} in flight when applied, "
                           f"{r.written_during} written while it lasted"
                           for r in result.steps if r.met_data is not None),
                         *(f"lost around the {x.server} failover ({x.step}): {x.lost} of {x.lost_total}, first ids "
                           f"{x.first_ids}; {x.evidence[:300]}" for x in result.failover_losses if x.lost)])
    return incident.write(exact, directory / f"{result.name}.toml", comment)


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def verdict_signature(result: ScenarioResult) -> str:
    """What must be identical between repeated runs: the verdict and which invariants failed."""
    return result.verdict + ":" + ",".join(sorted({c.name for c in result.violations}))


def consistency(results: list[ScenarioResult]) -> dict[str, list[str]]:
    signatures: dict[str, list[str]] = {}
    for result in results:
        signatures.setdefault(result.name, []).append(verdict_signature(result))
    return signatures


KEEP = ("never", "always", "on_failure")


def should_keep(keep: str, exit_code: int) -> bool:
    """--keep holds the stack after every run, --keep-on-failure after one that did not pass
    (a violation or a harness error: both are worth a look)."""
    return keep == "always" or (keep == "on_failure" and exit_code != EXIT_OK)


def run_gate(scenarios: list[Scenario], target_path: Path, *, backend: str = "local",
             out_dir: Path | None = None, on_result: Callable[[ScenarioResult], None] | None = None,
             repeat: int = 1, on_step: Callable[[str, str, StepRecord], None] | None = None,
             interrupt: threading.Event | None = None, extra_env: dict[str, str] | None = None,
             keep: str = "never", on_keep: Callable[[Path], None] | None = None, replays: int = 0,
             fail_fast: bool = False) -> GateRun:
    """Run, judge, report. ``keep``: leave the stack up after the reports are written (always, or
    only when the gate did not pass) until ``interrupt`` is set, and call ``on_keep`` with the
    file that says how to reach it. A run stopped at once (a second Ctrl-C, SIGTERM) still
    writes report.json with the scenarios that finished, marked interrupted."""
    if keep not in KEEP:
        raise HarnessError(f"keep must be one of {KEEP}, not {keep!r}")
    target = load_target(target_path)
    run_id = new_run_id()
    out = out_dir or reports_dir() / run_id
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results: list[ScenarioResult] = []
    gate: GateRun | None = None
    try:
        with make_backend(backend, logical_replication=target.postgres_logical_replication,
                          redis_sentinel=target.redis_discovery == "sentinel") as stack:
            for round_ in range(repeat):
                work = scenario_workdir(out) / (f"round-{round_ + 1}" if repeat > 1 else "")
                if fail_fast and any(r.verdict is Verdict.FAIL for r in results):
                    break  # the rounds left are not started either
                run_on_stack(stack, target, scenarios, work, extra_env=extra_env, on_result=on_result,
                             on_step=on_step, interrupt=interrupt, into=results, fail_fast=fail_fast)
            measure_failures(stack, target, scenarios, results, scenario_workdir(out), replays, extra_env, interrupt)
            gate = finish_gate(run_id, out, target, target_path, backend, scenarios, results, repeat,
                               time.monotonic() - t0, server_versions(stack), extra_env,
                               interrupted=interrupt is not None and interrupt.is_set())
            if should_keep(keep, gate.exit_code):
                hold_stack(stack, gate, interrupt or threading.Event(), on_keep)
    except KeyboardInterrupt:
        if gate is None:  # stopped at once: report what finished, then go on unwinding
            write_all(out, RunReport(run_id=run_id, target=str(target_path), backend=backend,
                                     verdict=Verdict.ERROR, duration_s=round(time.monotonic() - t0, 3),
                                     scenarios=results, repeat=repeat, interrupted=True))
        raise
    return gate


def finish_gate(run_id: str, out: Path, target: TargetDefinition, target_path: Path, backend: str,
                scenarios: list[Scenario], results: list[ScenarioResult], repeat: int, duration_s: float,
                servers: dict[str, str], extra_env: dict[str, str] | None, interrupted: bool) -> GateRun:
    code = exit_code_of(results)
    signatures = consistency(results)
    unstable = {name: sigs for name, sigs in signatures.items() if len(set(sigs)) > 1}
    if unstable and code == EXIT_OK:
        code = EXIT_VIOLATION
    write_incidents(out / "incidents", scenarios, results, target, extra_env=extra_env, servers=servers)
    report = RunReport(run_id=run_id, target=str(target_path), backend=backend,
                       verdict={EXIT_OK: Verdict.PASS, EXIT_VIOLATION: Verdict.FAIL, EXIT_HARNESS: Verdict.ERROR}[code],
                       duration_s=round(duration_s, 3), scenarios=results, repeat=repeat,
                       repeat_consistent=not unstable, unstable=unstable,
                       report_errors=[e for r in results for e in r.report_errors], interrupted=interrupted)
    write_all(out, report)
    return GateRun(run_id, out, results, code, servers, interrupted)


def hold_stack(stack: Stack, gate: GateRun, interrupt: threading.Event,
               on_keep: Callable[[Path], None] | None) -> None:
    """Leave the stack (and every scenario's table, topic and streams) up for a recount by hand:
    ``stack.json`` beside the reports (0600: it holds the administrator's passwords) says how to
    reach it. Returns when ``interrupt`` is set (Ctrl-C), and the stack is then torn down."""
    where = gate.out / "stack.json"
    where.unlink(missing_ok=True)
    described = {**stack.describe(), "postgres_dsn": stack.postgres_dsn(), "redis_url": stack.redis_url(),
                 "kafka_bootstrap": stack.kafka_bootstrap(),
                 "scenarios": {r.name: r.names for r in gate.results}}
    write_secret(where, json.dumps(described, indent=2) + "\n")
    if on_keep is not None:
        on_keep(where)
    while not interrupt.wait(3600):  # only Ctrl-C (or SIGTERM, which unwinds) ends it
        continue
