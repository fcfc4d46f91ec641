"""Incident files: every shipped scenario round-trips, and each kind of bad file is refused
with the file, line and field named (exit 2 through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import incident
from harness.cli import main
from harness.registry import discover

GOOD = """
[incident]
name = "demo"
description = "Kafka down for a while"

[workload]
records = 100

[expect]
no_loss = true

[[steps]]
phase = "during"
at = 0.5
duration = 2.0
fault = "link_down"
link = "kafka"
"""


@pytest.mark.parametrize("name", list(discover()))
def test_every_shipped_scenario_round_trips_through_an_incident_file(tmp_path: Path, name: str) -> None:
    scenario = discover()[name]
    path = incident.write(scenario, tmp_path / f"{name}.toml", comment="round trip")
    assert incident.load(path) == scenario


@pytest.mark.parametrize("edit,fragment,line", [
    (lambda t: t.replace('records = 100', 'records = = 100'), "bad TOML syntax", None),
    (lambda t: t.replace('fault = "link_down"', 'fault = "earthquake"'), "unknown fault 'earthquake'", 16),
    (lambda t: t.replace('link = "kafka"', 'link = "mysql"'), "unknown target link 'mysql'", 17),
    (lambda t: t.replace("at = 0.5", "at = -1"), "`at` must be a number >= 0", 14),
    (lambda t: t.replace("duration = 2.0", "duration = 0"), "`duration` must be a number > 0", 15),
    (lambda t: t.replace("[expect]\nno_loss = true\n", ""), "missing expectations", None),
    (lambda t: t + '\n[[steps]]\nat = 1.0\nduration = 1.0\nfault = "link_down"\nlink = "kafka"\n',
     "overlaps step 1 on the same target", 20),
    (lambda t: t.replace("no_loss = true", "no_loss = true\nloses_nothing = true"), "unknown field 'loses_nothing'",
     None),
])
def test_malformed_incident_files_name_the_problem(tmp_path: Path, edit, fragment: str,  # noqa: ANN001
                                                   line: int | None) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(incident.IncidentError) as info:
        incident.load(path)
    assert fragment in str(info.value) and str(path) in str(info.value)
    if line is not None:
        assert f"{path}:{line}:" in str(info.value)
    result = CliRunner().invoke(main, ["reproduce", str(path)])
    assert result.exit_code == 2 and fragment in " ".join(result.output.split())


def test_a_good_file_loads_into_the_scenario_it_describes(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    scenario = incident.load(path)
    assert scenario.name == "demo" and scenario.workload.records == 100
    assert [(s.phase, s.at, s.duration, type(s.do).__name__) for s in scenario.steps] == [
        ("during", 0.5, 2.0, "LinkDown")]
