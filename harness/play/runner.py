"""Runs one scenario against a running stack and a black-box exporter (journal after
chaostoolkit: steady state before, the timeline during, heal, drain and judge after).

The parts live apart: ``run.Run`` is what steps and the judge share, ``player`` plays the
timeline, ``judge`` checks the expectations; this module only puts them in order and makes
sure everything a run started is stopped, whatever happened.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from harness.catalogue.scenario import Scenario
from harness.checks import verify as verify_checks
from harness.checks import verify_custom
from harness.errors import HarnessError
from harness.infra.stack import Stack
from harness.model.knobs import scenario_knobs
from harness.model.target import KnobMissing, TargetDefinition
from harness.play import verdict as judge
from harness.play.player import Interrupted, Player
from harness.play.run import Run
from harness.report.journal import StepRecord
from harness.report.resources import ResourceMonitor
from harness.report.result import ScenarioResult, Verdict
from harness.rig.tap import BufferTap
from harness.rig.timeline import Sampler
from harness.services.executor import release_port
from harness.steps.disk import release_disks
from harness.steps.files import release_faulty_mounts

__all__ = ["Interrupted", "ScenarioResult", "ScenarioRunner", "StepRecord", "scenario_workdir"]


class ScenarioRunner:
    def __init__(self, stack: Stack, target: TargetDefinition, scenario: Scenario, workdir: Path,
                 extra_env: dict[str, str] | None = None, interrupt: threading.Event | None = None,
                 on_step: Callable[[str, StepRecord], None] | None = None) -> None:
        verify_checks()  # a setting no check reads must not run as if it meant something
        verify_custom(scenario.expect, f"scenario {scenario.name}")
        self.scenario = scenario.validate()
        self.extra_env = extra_env or {}
        self.run_ = Run(stack, target, self.scenario, workdir, interrupt)
        self.player = Player(self.run_, on_step)
        self.sampler: Sampler | None = None
        self.monitor: ResourceMonitor | None = None

    @property
    def result(self) -> ScenarioResult:
        return self.run_.result

    def run(self) -> ScenarioResult:
        run = self.run_
        reason = self._cannot_run()
        if reason is not None:
            # Not a pass and not a failure: the run could not happen here, and the report says why.
            run.result.verdict, run.result.skipped = Verdict.SKIPPED, reason
            return run.result
        try:
            self._play()
            run.result.verdict = Verdict.FAIL if run.result.violations else Verdict.PASS
            starved = self._only_starved_faults()
            if starved is not None and all(c.name == "protocol_faults_met" for c in run.result.violations):
                # Nothing else failed: the run did not test what it is about (a real loss still fails).
                run.result.verdict, run.result.skipped = Verdict.SKIPPED, starved
        except HarnessError as exc:
            run.result.verdict, run.result.error = Verdict.ERROR, str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug in the harness is a harness error (exit 2), not a verdict
            run.result.verdict = Verdict.ERROR
            run.result.error = f"harness bug: {exc.__class__.__name__}: {exc}\n{traceback.format_exc()}"
        finally:
            self._cleanup()
            run.result.duration_s = round(time.monotonic() - run.t0, 3)
        return run.result

    def _only_starved_faults(self) -> str | None:
        """Why a run proved nothing, if it did not: its every fault was answered through a protocol
        proxy and none met a request it matched (a target that never sent that statement)."""
        reaches = self.run_.observed.reaches
        faults = [s for s in self.scenario.steps if s.do.role == "fault"]
        if not reaches or len(reaches) != len(faults) or any(r.answered for r in reaches):
            return None
        return ("no fault met a request of the target's (" + "; ".join(
            f"{r.step}: {r.matched} matched" for r in reaches) + "): nothing was tested")

    def _cannot_run(self) -> str | None:
        """Why this backend or target cannot run the scenario (a step it cannot perform, a knob the
        target lacks); sets the exporter's environment otherwise."""
        run = self.run_
        reasons = [r for s in self.scenario.steps
                   if (r := run.stack.backend.unsupported(s.do) or run.target.unsupported(s.do))]
        faults = [s for s in self.scenario.steps if s.do.role == "fault"]
        idle = [r for s in faults if (r := run.target.idle_for(s.do))]
        if faults and len(idle) == len(faults):  # one on Redis beside one on Kafka still tests the Kafka link
            reasons.append(idle[0])
        if (why := run.target.cannot_run(self.scenario.sink, self.scenario.expect.dead_lettered_at_least > 0)):
            reasons.append(why)
        mix = self.scenario.workload.changes
        if mix is not None and (why := run.target.cannot_carry(mix.operations)):
            reasons.append(f"{why}: scenario {self.scenario.name} writes {', '.join(sorted(mix.operations))}")
        change_knobs = run.target.changes.knobs if mix is not None and run.target.changes is not None else {}
        try:
            run.env = {**run.target.knob_env({**change_knobs, **scenario_knobs(self.scenario.sink,
                                                                               self.scenario.knobs)}),
                       **self.scenario.exporter_env, **self.extra_env}
        except KnobMissing as exc:
            reasons.append(f"{exc}: scenario {self.scenario.name} cannot run against it")
        return reasons[0] if reasons else None

    def _play(self) -> None:
        run = self.run_
        run.stack.reset()
        run.ctx.workdir.mkdir(parents=True, exist_ok=True)
        run.writer.create()
        if run.changes is not None:
            run.changes.create()
        self.player.prepare()
        sinks = run.target.sinks
        buffered = run.target.has_sink("buffer_stream")  # a connector writing the sink directly has no buffer
        if buffered:
            run.tap = BufferTap(run.stack, run.sink("buffer_stream"), run.sink("buffer_group"),
                                ids_field=sinks.get("buffer_ids_field", "id"),
                                ids_separator=sinks.get("buffer_ids_separator", ",")).start()
        run.prepare_source()
        exporter = run.start_exporter()
        if buffered and run.target.has_metrics:
            watches = [w for step in self.scenario.steps if (w := step.do.watch(run)) is not None]
            self.sampler = Sampler(run.stack, exporter.sink("buffer_stream"), run.counters, run.t0, watches).start()
        if self.scenario.expect.no_resource_leak:
            self.monitor = ResourceMonitor(lambda: run.exporter.pid() if run.exporter else None, run.t0).start()
        self.player.before()
        self.player.during()
        healed_at = judge.heal(run)
        self.player.phase("after")
        self.player.measured()  # every fault's in-flight figure is in the journal before judging
        sampler, monitor, self.sampler, self.monitor = self.sampler, self.monitor, None, None
        judge.judge(run, healed_at, sampler, monitor)

    def _cleanup(self) -> None:
        run = self.run_
        if self.sampler is not None:
            self.sampler.stop()
        if self.monitor is not None:
            self.monitor.stop()
        problems = self.player.remove_all()
        self.player.close()
        while run.closers:
            run.closers.pop()()  # what a step asked to undo whatever happened (an open transaction)
        problems.extend(self.player.calls.settle())  # a call given up on: returned since, its fault undone
        if run.tap is not None:
            run.tap.close()
        if (restart_problem := run.settle_restart()) is not None:
            problems.append(restart_problem)
        if run.exporter is not None:
            run.result.log_excerpt = run.result.log_excerpt or judge.log_excerpt(run.exporter)
            run.exporter.close()
        release_port(run.ctx.http_port)  # an explore of a thousand runs holds no thousand claims
        # After the exporter: a file system unmounted under a running writer would be held
        # open by it (a lazy unmount), and its files would not come back into the directory.
        problems.extend(release_faulty_mounts(run))
        release_disks(run)
        try:
            run.cleanup_source()
        except HarnessError as exc:
            problems.append(str(exc))
        if problems and run.result.error is None:
            run.result.verdict = Verdict.ERROR
            run.result.error = "; ".join(problems)


def scenario_workdir(base: Path) -> Path:
    path = base / "work"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # logs, exports and the exporter's tokens of every scenario: the runner's own
    return path
