"""Faultline installed from its wheel, outside any checkout (issue 29): the wheel carries what the
commands need by default (the bundled target, incident files, locustfiles, the catalogue), and a
team runs it from its own directory against the bundled exporter and against a target file of
its own. Before, `faultline list` there said the bundled target ".../site-packages/targets/
bundled-exporter.toml does not exist"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from harness.paths import project_root

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the wheel installed (its dependencies are this environment's: the test
    is about what the wheel carries, not about downloading them again)."""
    base = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(project_root()), "--no-deps", "-q",
                            "-w", str(base / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((base / "dist").glob("faultline-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for carried in ("harness/shipped/targets/bundled-exporter.toml", "harness/shipped/incidents/debezium/"
                    "slot_left_behind_on_promotion.toml", "harness/rig/locustfiles/source_writers.py",
                    "scenarios/baseline.py"):
        assert carried in names
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # This environment's packages as plain path entries after the venv's own: its .pth files (this
    # checkout's editable install among them) are not read, so only the wheel provides Faultline.
    own = next(venv.glob("lib/python*/site-packages"))
    (own / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def _faultline(venv: Path, cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FAULTLINE_REPORTS_DIR")}
    return subprocess.run([str(venv / "bin" / "faultline"), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def test_the_installed_wheel_runs_from_a_teams_directory(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import harness; print(harness.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert str(installed) in where.stdout, where  # the wheel's code, not this checkout's
    listed = _faultline(installed, tmp_path, "list")
    assert listed.returncode == 0 and "baseline" in listed.stdout, listed.stderr[-2000:]
    setup = _faultline(installed, tmp_path, "setup", "--check")
    assert setup.returncode == 0, setup.stderr[-2000:]
    theirs = tmp_path / "theirs.toml"  # a team's own target file, beside their code
    theirs.write_text(_bundled_text(installed))
    run = _faultline(installed, tmp_path, "run", "--target", str(theirs), "baseline", "--replays", "0")
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    reports = list((tmp_path / "reports").glob("*/report.json"))
    assert len(reports) == 1  # in the team's directory, not in site-packages
    version = tomllib.loads((project_root() / "pyproject.toml").read_text())["project"]["version"]
    assert json.loads(reports[0].read_text())["faultline_version"] == version  # which Faultline judged it


def _bundled_text(venv: Path) -> str:
    found = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "from harness.model.target import BUNDLED; print(BUNDLED.read_text())"],
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    return found.stdout
