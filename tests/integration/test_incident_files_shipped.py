"""The incident files shipped for the incidents behind Faultline hold against the clean exporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalogue import incident
from harness.cli.pytest_plugin import assert_scenario_passed
from harness.paths import project_root

pytestmark = pytest.mark.faultline
FILES = sorted((project_root() / "incidents").glob("*.toml"))
INCIDENTS = {"send-errors-swallowed", "pause-grace-never-fires", "timeouts-too-tight", "fatal-on-transient-timeout",
             "export-lost-to-disk-and-encoding"}


def test_one_file_for_each_incident_behind_the_project() -> None:
    assert {incident.load(path).incident for path in FILES} == INCIDENTS


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_shipped_incident_holds_against_the_clean_exporter(run_scenario, path: Path) -> None:  # noqa: ANN001
    assert_scenario_passed(run_scenario(incident.load(path)))
