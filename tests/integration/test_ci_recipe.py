"""README's CI recipes (``ci/github-actions.yml``, ``ci/gitlab-ci.yml``), their commands run as
written: the gate job on a push to main and then on a pull request (the verdicts into the job
summary, report.html and junit.xml where the artifact step takes them, the pull request compared
with main's last gate), and, slow, the explore matrix of four shards merged into one report.
Only the install step is left out: `test_wheel.py` installs the wheel into a fresh virtualenv.
The job's variables are set as a team sets them: the bundled target, one scenario, a few runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.model.target import BUNDLED
from harness.paths import project_root

pytestmark = [pytest.mark.faultline]
RECIPES = project_root() / "ci"
GITHUB = yaml.safe_load((RECIPES / "github-actions.yml").read_text())
GITLAB = yaml.safe_load((RECIPES / "gitlab-ci.yml").read_text())
INSTALL = "python -m pip install"


def _holds(condition: str | None, event: str, ref: str) -> bool:
    """The recipe's ``if:`` conditions, as GitHub evaluates them for this event."""
    if condition is None or condition == "always()":
        return True
    if condition == "github.event_name == 'pull_request'":
        return event == "pull_request"
    if condition == "github.ref == 'refs/heads/main'":
        return ref == "refs/heads/main"
    raise AssertionError(f"a condition the test does not know: {condition}")


def _run_job(job: str, work: Path, env: dict[str, str], event: str, ref: str,
             matrix: dict[str, str] | None = None, only_if: str | None = None) -> list[str]:
    """Every ``run:`` step of the job whose condition holds, in order, in ``work``; stops at the
    first that fails, as GitHub does for steps without ``always()``. Returns the commands run."""
    ran = []
    failed = False
    for step in GITHUB["jobs"][job]["steps"]:
        command, condition = step.get("run"), step.get("if")
        if command is None or command.startswith(INSTALL) or not _holds(condition, event, ref):
            continue
        if only_if is not None and condition != only_if or failed and condition != "always()":
            continue
        for name, value in (matrix or {}).items():
            command = command.replace("${{ matrix." + name + " }}", value)
        assert "${{" not in command, command
        done = subprocess.run(["bash", "-e", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        ran.append(command)
    return ran


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {**os.environ, **{k: str(v) for k, v in GITHUB["env"].items()}, **variables,
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md")}
    env.pop("FAULTLINE_EXPORTER_DEFECT", None)
    return env


@pytest.mark.timeout(600)
def test_the_gate_job_runs_as_written_on_main_and_on_a_pull_request(tmp_path: Path) -> None:
    env = _env(tmp_path, FAULTLINE_TARGET=str(BUNDLED), FAULTLINE_SCENARIOS="baseline")
    on_main = _run_job("gate", tmp_path, env, "push", "refs/heads/main")
    assert any(c.startswith("faultline run") for c in on_main) and any("cp -r" in c for c in on_main)
    gate = tmp_path / "reports" / "gate"
    for name in ("report.html", "report.json", "junit.xml"):  # what the artifact step uploads
        assert (gate / name).is_file(), name
    assert "baseline" in (tmp_path / "step-summary.md").read_text()
    assert (tmp_path / "reports" / "main" / "report.json").is_file()  # what main's cache saves
    compared = _run_job("gate", tmp_path, env, "pull_request", "refs/pull/1/merge",
                        only_if="github.event_name == 'pull_request'")
    assert compared and compared[0].endswith("--fail-on regression")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_explore_matrix_and_its_merge_run_as_written(tmp_path: Path) -> None:
    env = _env(tmp_path, FAULTLINE_TARGET=str(BUNDLED), FAULTLINE_EXPLORE_RUNS="4")
    for shard in GITHUB["jobs"]["explore"]["strategy"]["matrix"]["shard"]:
        _run_job("explore", tmp_path, env, "push", "refs/heads/main", matrix={"shard": str(shard)})
        # The download step's layout: one directory per artifact, named after it.
        (tmp_path / "reports" / f"explore-{shard}").rename(tmp_path / "reports" / f"faultline-explore-{shard}")
    _run_job("explore-merge", tmp_path, env, "push", "refs/heads/main")
    merged = (tmp_path / "reports" / "explore" / "report.json").read_text()
    assert '"runs": 4' in merged and '"merged_from"' in merged


def test_the_gitlab_recipe_runs_the_same_commands_as_the_github_one() -> None:
    """What the GitHub recipe's test runs is what GitLab runs: the same faultline commands, the
    variables spelled the GitLab way."""
    def faultline_commands(lines: list[str]) -> list[str]:
        found = [re.search(r"faultline [a-z].*", line) for line in lines]
        return [m.group(0).replace('"$SHARD"/4', "${{ matrix.shard }}/4").replace(
            '"$SHARD"', "${{ matrix.shard }}") for m in found if m and not m.group(0).startswith("faultline setup")]

    github = [s["run"] for job in GITHUB["jobs"].values() for s in job["steps"] if "run" in s]
    gitlab = [line for job in GITLAB.values() if isinstance(job, dict) for line in job.get("script", [])]
    gitlab = [line.replace('reports/explore-"$SHARD"', "reports/explore-${{ matrix.shard }}") for line in gitlab]
    assert sorted(faultline_commands(gitlab)) == sorted(
        c.replace("reports/faultline-explore-*", "reports/explore-*") for c in faultline_commands(github))
    assert GITLAB["variables"] == {k: v for k, v in GITHUB["env"].items()}


def test_readme_shows_the_recipes_as_they_are_tested() -> None:
    readme = (project_root() / "README.md").read_text()
    for recipe in ("github-actions.yml", "gitlab-ci.yml"):
        assert (RECIPES / recipe).read_text() in readme, f"README's copy of ci/{recipe} differs from the file"
