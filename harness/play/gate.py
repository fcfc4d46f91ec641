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
from harness.play.parallel import Jobs, StackPool, play_all, stamped, started_pool
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


def run_on_stack(stack: Stack | StackPool, target: TargetDefinition, scenarios: list[Scenario], work: Path,
                 extra_env: dict[str, str] | None = None,
                 on_result: Callable[[ScenarioResult], None] | None = None,
                 on_step: Callable[[str, str, StepRecord], None] | None = None,
                 interrupt: threading.Event | None = None,
                 into: list[ScenarioResult] | None = None, fail_fast: bool = False,
                 began: float | None = None) -> list[ScenarioResult]:
    """Each scenario on whichever of the pool's stacks is free (one stack: in turn). Results are
    appended to ``into`` as they come (so a run stopped at once still has the ones that finished)
    and put back in the scenarios' order at the end. ``fail_fast``: after the first violated
    scenario no other is started (those running beside it finish), each reported skipped with
    the reason."""
    pool = stack if isinstance(stack, StackPool) else StackPool([stack])
    results = [] if into is None else into
    first, lock, failed = len(results), threading.Lock(), list[str]()
    stop_now = interrupt or threading.Event()
    began = time.monotonic() if began is None else began

    def play(number: int, on: Stack, item: tuple[Scenario, Path]) -> ScenarioResult:
        scenario, where = item
        step_hook = (lambda event, record, name=scenario.name: on_step(name, event, record)) if on_step else None
        started = time.monotonic()
        result = stamped(ScenarioRunner(on, target, scenario, where, extra_env=extra_env, interrupt=stop_now,
                                        on_step=step_hook).run(), number, began, started)
        with lock:
            results.append(result)
            if result.verdict is Verdict.FAIL:
                failed.append(result.name)
            if on_result:
                on_result(result)
        return result

    items = list(zip(scenarios, workdirs(work, scenarios), strict=True))
    played = play_all(pool, items, play, stop=lambda: stop_now.is_set() or (fail_fast and bool(failed)))
    if fail_fast and failed and not stop_now.is_set():
        played = [r if r is not None else not_started(s, failed[0]) for s, r in zip(scenarios, played, strict=True)]
    results[first:] = [r for r in played if r is not None]  # the scenarios' order, whatever finished first
    return results


def workdirs(work: Path, scenarios: list[Scenario]) -> list[Path]:
    """Each scenario's directory: ``work``, and for the second and later plays of one scenario
    (replays, which may run at the same time on two stacks) ``work/2``, ``work/3``, ..."""
    seen: dict[str, int] = {}
    found = []
    for scenario in scenarios:
        seen[scenario.name] = seen.get(scenario.name, 0) + 1
        found.append(work if seen[scenario.name] == 1 else work / str(seen[scenario.name]))
    return found


def not_started(scenario: Scenario, failed: str) -> ScenarioResult:
    """A scenario --fail-fast did not start: skipped, and why (never a pass)."""
    return ScenarioResult(scenario.name, scenario.description, None, verdict=Verdict.SKIPPED,
                          skipped=f"not started: --fail-fast stopped the run after {failed} failed")


def measure_failures(stack: Stack | StackPool, target: TargetDefinition, scenarios: list[Scenario],
                     results: list[ScenarioResult], work: Path, replays: int, extra_env: dict[str, str] | None = None,
                     interrupt: threading.Event | None = None) -> None:
    """Each failing scenario replayed ``replays`` times (on the run's stacks) before it is written up:
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
             fail_fast: bool = False, jobs: Jobs | None = None) -> GateRun:
    """Run, judge, report, on ``jobs`` stacks side by side (default: one). ``keep``: leave the
    stacks up after the reports are written (always, or only when the gate did not pass) until
    ``interrupt`` is set, and call ``on_keep`` with the file that says how to reach them. A run
    stopped at once (a second Ctrl-C, SIGTERM) still writes report.json with the scenarios that
    finished, marked interrupted."""
    if keep not in KEEP:
        raise HarnessError(f"keep must be one of {KEEP}, not {keep!r}")
    target = load_target(target_path)
    run_id = new_run_id()
    out = out_dir or reports_dir() / run_id
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results: list[ScenarioResult] = []
    gate: GateRun | None = None
    jobs = jobs or Jobs(1, "")
    try:
        with started_pool(lambda: make_backend(backend, logical_replication=target.postgres_logical_replication,
                                               redis_sentinel=target.redis_discovery == "sentinel"), jobs) as pool:
            for round_ in range(repeat):
                work = scenario_workdir(out) / (f"round-{round_ + 1}" if repeat > 1 else "")
                if fail_fast and any(r.verdict is Verdict.FAIL for r in results):
                    break  # the rounds left are not started either
                run_on_stack(pool, target, scenarios, work, extra_env=extra_env, on_result=on_result,
                             on_step=on_step, interrupt=interrupt, into=results, fail_fast=fail_fast, began=t0)
            measure_failures(pool, target, scenarios, results, scenario_workdir(out), replays, extra_env, interrupt)
            gate = finish_gate(run_id, out, target, target_path, backend, scenarios, results, repeat,
                               time.monotonic() - t0, server_versions(pool.stacks[0]), extra_env,
                               interrupted=interrupt is not None and interrupt.is_set(), jobs=jobs)
            if should_keep(keep, gate.exit_code):
                hold_stack(pool, gate, interrupt or threading.Event(), on_keep)
    except KeyboardInterrupt:
        if gate is None:  # stopped at once: report what finished, then go on unwinding
            write_all(out, RunReport(run_id=run_id, target=str(target_path), backend=backend,
                                     verdict=Verdict.ERROR, duration_s=round(time.monotonic() - t0, 3),
                                     scenarios=results, repeat=repeat, interrupted=True, jobs=jobs.n,
                                     jobs_why=jobs.why))
        raise
    return gate


def finish_gate(run_id: str, out: Path, target: TargetDefinition, target_path: Path, backend: str,
                scenarios: list[Scenario], results: list[ScenarioResult], repeat: int, duration_s: float,
                servers: dict[str, str], extra_env: dict[str, str] | None, interrupted: bool,
                jobs: Jobs | None = None) -> GateRun:
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
                       report_errors=[e for r in results for e in r.report_errors], interrupted=interrupted,
                       jobs=jobs.n if jobs else 1, jobs_why=jobs.why if jobs else "")
    write_all(out, report)
    return GateRun(run_id, out, results, code, servers, interrupted)


def described(stack: Stack) -> dict[str, object]:
    return {**stack.describe(), "postgres_dsn": stack.postgres_dsn(), "redis_url": stack.redis_url(),
            "kafka_bootstrap": stack.kafka_bootstrap()}


def hold_stack(pool: StackPool, gate: GateRun, interrupt: threading.Event,
               on_keep: Callable[[Path], None] | None) -> None:
    """Leave the stacks (and every scenario's table, topic and streams) up for a recount by hand:
    ``stack.json`` beside the reports (0600: it holds the administrator's passwords) says how to
    reach them: the first stack at its top, every stack under ``stacks`` and each scenario's
    stack number beside its names. Returns when ``interrupt`` is set (Ctrl-C), and the stacks
    are then torn down."""
    where = gate.out / "stack.json"
    where.unlink(missing_ok=True)
    described_ = {**described(pool.stacks[0]), "stacks": [described(s) for s in pool.stacks],
                  "scenarios": {r.name: {**r.names, "stack": str(r.stack)} for r in gate.results}}
    write_secret(where, json.dumps(described_, indent=2) + "\n")
    if on_keep is not None:
        on_keep(where)
    while not interrupt.wait(3600):  # only Ctrl-C (or SIGTERM, which unwinds) ends it
        continue
