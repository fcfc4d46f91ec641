"""A team's own step kind, registered from outside the package, works like a built-in: listed,
written to and read from incident files, applied and removed with evidence, in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.model.target import BUNDLED

pytestmark = pytest.mark.faultline

STEP_MODULE = textwrap.dedent('''
    """Redis stops serving writes of every client for the window (CLIENT PAUSE ... WRITE)."""
    from typing import Any, ClassVar

    import redis
    from pydantic.dataclasses import dataclass

    from harness.steps import STRICT, StepKind, step_kind


    @step_kind
    @dataclass(frozen=True, config=STRICT)
    class {cls}(StepKind):
        """Redis holds every client's writes for the window (CLIENT PAUSE WRITE), then lets them go."""

        kind_name: ClassVar[str] = "{kind}"
        millis: int = 60_000

        def describe(self) -> str:
            return f"redis clients paused for writes ({{self.millis}} ms at most)"

        def apply(self, run: Any, record: Any) -> Any:
            client = redis.Redis.from_url(run.stack.redis_url(proxied=False), retry=None, socket_timeout=5)
            client.execute_command("CLIENT", "PAUSE", self.millis, "WRITE")
            record.evidence = "paused: " + str(client.info("clients").get("paused_reason", "writes"))
            return client

        def remove(self, run: Any, handle: Any, record: Any) -> None:
            handle.execute_command("CLIENT", "UNPAUSE")
            record.evidence += "; unpaused"
            handle.close()
''')

INCIDENT = textwrap.dedent('''
    [incident]
    name = "team_step"
    description = "a team's own fault, run by the gate"
    during_s = 3.0

    [workload]
    records = 200
    chunk = 20

    [expect]
    no_loss = true
    metrics_agree = true

    [[steps]]
    at = 0.5
    duration = 1.5
    fault = "{kind}"
''')


def install(tmp_path: Path, package: str, cls: str, kind: str, entry_point: bool) -> dict[str, str]:
    """A package on PYTHONPATH; with ``entry_point``, also its distribution metadata naming it."""
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text(STEP_MODULE.format(cls=cls, kind=kind))
    if entry_point:
        info = tmp_path / f"{package}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[faultline.steps]\n{package} = {package}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "250"}


def faultline(*args: str, env: dict[str, str], timeout: float = 280) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


@pytest.mark.timeout(300)
def test_a_step_kind_from_an_entry_point_is_listed_and_run_end_to_end(tmp_path: Path) -> None:
    env = install(tmp_path, "teamsteps", "PauseRedisWrites", "pause_redis_writes", entry_point=True)
    listed = faultline("list", "--steps", env=env, timeout=60)
    assert listed.returncode == 0 and "pause_redis_writes" in listed.stdout and "teamsteps" in listed.stdout
    path = tmp_path / "team.toml"
    path.write_text(INCIDENT.format(kind="pause_redis_writes"))
    proc = faultline("reproduce", str(path), "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())["scenarios"][0]
    [step] = report["steps"]
    assert step["description"] == "redis clients paused for writes (60000 ms at most)"
    assert step["evidence"].startswith("paused: ") and step["evidence"].endswith("; unpaused")
    assert step["applied_at"] < step["removed_at"]
    assert report["verdict"] == "pass"


@pytest.mark.timeout(120)
def test_a_step_module_named_by_the_target_definition_is_registered(tmp_path: Path) -> None:
    env = install(tmp_path, "targetsteps", "HoldRedisWrites", "hold_redis_writes", entry_point=False)
    target = tmp_path / "target.toml"
    target.write_text('steps = ["targetsteps"]\n' + BUNDLED.read_text())
    listed = faultline("list", "--steps", "--target", str(target), env=env, timeout=60)
    assert listed.returncode == 0 and "hold_redis_writes" in listed.stdout
    without = faultline("list", "--steps", env=env, timeout=60)
    assert "hold_redis_writes" not in without.stdout  # only the target that names it brings it in
    broken = tmp_path / "broken.toml"
    broken.write_text('steps = ["no_such_step_module"]\n' + BUNDLED.read_text())
    refused = faultline("list", "--steps", "--target", str(broken), env=env, timeout=60)
    assert refused.returncode == 2 and "no_such_step_module" in refused.stderr
