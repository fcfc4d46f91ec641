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


REPRODUCTION = """
[reproduction]
reproduced = "5/5"
violates = ["no_loss"]
faultline_version = "0.1.0"
target = "bundled-exporter"
seed = 1
measured_at = "2026-11-25"
defect = "ack_before_send"
servers = { postgres = "15.18", redis = "7.0.15", kafka = "3.9.1" }
"""


def test_a_reproduction_record_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "rep.toml"
    path.write_text(GOOD + REPRODUCTION)
    scenario = incident.load(path)
    assert scenario.reproduction is not None
    assert (scenario.reproduction.rate, scenario.reproduction.violates) == ("5/5", ("no_loss",))
    assert scenario.reproduction.servers["kafka"] == "3.9.1"
    again = incident.write(scenario, tmp_path / "again.toml")
    assert incident.load(again).reproduction == scenario.reproduction


@pytest.mark.parametrize(("line", "message"), [
    ('reproduced = "6/5"', "0 <= failed <= runs"),
    ('reproduced = "all of them"', "failed/runs"),
    ('reproduced = 5', "reproduced must be a str"),
    ('seed = "one"', "seed must be a int"),
    ('colour = "red"', "unknown field 'colour'"),
])
def test_a_bad_reproduction_record_is_refused_with_its_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    body = REPRODUCTION.replace('reproduced = "5/5"', line) if line.startswith("reproduced") else \
        REPRODUCTION.replace('seed = 1', line)
    path.write_text(GOOD + body)
    with pytest.raises(incident.IncidentError) as info:
        incident.load(path)
    assert message in str(info.value)
    table_line = (GOOD + body).splitlines().index("[reproduction]") + 1
    assert f"bad.toml:{table_line}:" in str(info.value)


def test_repeat_outcomes_tell_reproducing_from_flaky_from_held() -> None:
    from harness.reproduce import RepeatOutcome
    from harness.runner import Check, ScenarioResult

    def result(verdict: str, *violated: str) -> ScenarioResult:
        r = ScenarioResult("demo", "d", None, verdict=verdict)
        r.checks = [Check(name, False) for name in violated] + [Check("steady_state_after", True)]
        return r

    from harness.scenario import Reproduction, Scenario

    demo = Scenario(name="demo", description="d", reproduction=Reproduction(5, 5, ("no_loss",)))
    every = RepeatOutcome.of(demo, [result("fail", "no_loss", "metrics_agree")] * 3)
    assert (every.rate, every.exit_code) == ("3/3", 1) and "every time" in every.summary()
    flaky = RepeatOutcome.of(demo, [result("fail", "no_loss"), result("pass"), result("fail", "no_loss")])
    assert (flaky.rate, flaky.exit_code) == ("2/3", 1) and "flaky" in flaky.summary()
    other = RepeatOutcome.of(demo, [result("fail", "metrics_agree")] * 2)
    assert (other.rate, other.exit_code) == ("0/2", 1) and "another way" in other.summary()
    held = RepeatOutcome.of(demo, [result("pass")] * 4)
    assert (held.rate, held.exit_code) == ("0/4", 0)
    broken = RepeatOutcome.of(demo, [result("error")])
    assert broken.exit_code == 2
