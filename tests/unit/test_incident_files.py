"""Incident files: every shipped scenario round-trips, and each kind of bad file is refused
with the file, line and field named (exit 2 through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from incident_texts import GOOD

from harness.catalogue import incident
from harness.catalogue.registry import discover
from harness.cli.main import main


@pytest.mark.parametrize("name", list(discover()))
def test_every_shipped_scenario_round_trips_through_an_incident_file(tmp_path: Path, name: str) -> None:
    scenario = discover()[name]
    path = incident.write(scenario, tmp_path / f"{name}.toml", comment="round trip")
    assert incident.load(path) == scenario


@pytest.mark.parametrize("edit,fragment,line", [
    (lambda t: t.replace('records = 100', 'records = = 100'), "bad TOML syntax", None),
    (lambda t: t.replace('fault = "link_down"', 'fault = "earthquake"'), "unknown fault 'earthquake'", 16),
    (lambda t: t.replace('link = "kafka"', 'link = "mysql"'), "unknown link 'mysql'", 17),
    (lambda t: t.replace("at = 0.5", "at = -1"), "step 1: Step.at: Input should be greater than or equal to 0", 14),
    (lambda t: t.replace("at = 0.5", "at = nan"), "step 1: Step.at: Input should be a finite number", 14),
    (lambda t: t.replace("duration = 2.0", "duration = inf"), "step 1: Step.duration: Input should be a finite", 15),
    (lambda t: t.replace("duration = 2.0", "duration = 0"), "step 1: Step.duration: Input should be greater than or "
     "equal to 0.05", 15),
    (lambda t: t.replace("duration = 2.0", "duration = 1e-300"), "step 1: Step.duration: Input should be greater than "
     "or equal to 0.05", 15),
    (lambda t: t.replace("records = 100", "records = 1e18"), "[workload] Workload.records: Input should be a valid "
     "integer", 7),
    (lambda t: t.replace("records = 100", "records = 1000000000000000000"), "Workload.records: Input should be less "
     "than or equal to 10000000", 7),
    (lambda t: t.replace("no_loss = true", 'no_loss = "false"'), "[expect] Expect.no_loss: Input should be a valid "
     "boolean (got 'false')", 10),
    (lambda t: t.replace('name = "demo"', "name = 42"), "[incident] Scenario.name: Input should be a valid string",
     3),
    (lambda t: t.replace('link = "kafka"', 'link = "kafka"\nattributes = 5'),
     "step 1: LinkDown.attributes: Unexpected keyword argument", 18),
    (lambda t: "steps = 5\n" + t.split("[[steps]]")[0], "[steps]: Input should be a valid list", 1),
    (lambda t: "incident = 5\n" + t.replace("[incident]", "[x]"), "[incident]: Input should be a valid dictionary",
     1),
    (lambda t: t + "\n[weather]\nrain = true\n", "[weather]: Extra inputs are not permitted", 19),
    (lambda t: t.replace('fault = "link_down"', 'fault = "toxic"\ntype = "latency"\nattributes = 5'),
     "step 1: Toxic.attributes: Input should be a valid dictionary", 18),
    (lambda t: t.replace("[expect]\nno_loss = true\n", ""), "missing expectations", None),
    (lambda t: t + '\n[[steps]]\nat = 1.0\nduration = 1.0\nfault = "link_down"\nlink = "kafka"\n',
     "overlaps step 1 on the same target", 20),
    (lambda t: t.replace("no_loss = true", "no_loss = true\nloses_nothing = true"), "Expect.loses_nothing: "
     "Unexpected keyword argument", 11),
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
    ('reproduced = "all of them"', "String should match pattern"),
    ('reproduced = 5', "[reproduction].reproduced: Input should be a valid string"),
    ('seed = "one"', "[reproduction].seed: Input should be a valid integer"),
    ('seed = nan', "[reproduction].seed: Input should be a valid integer"),
    ('colour = "red"', "[reproduction].colour: Extra inputs are not permitted"),
])
def test_a_bad_reproduction_record_is_refused_with_its_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    body = REPRODUCTION.replace('reproduced = "5/5"', line) if line.startswith("reproduced") else \
        REPRODUCTION.replace('seed = 1', line)
    path.write_text(GOOD + body)
    with pytest.raises(incident.IncidentError) as info:
        incident.load(path)
    assert message in str(info.value)
    key = line.split(" = ")[0]
    key_line = next(n for n, text in enumerate((GOOD + body).splitlines(), 1) if text.startswith(f"{key} ="))
    assert f"bad.toml:{key_line}:" in str(info.value)


def test_repeat_outcomes_tell_reproducing_from_flaky_from_held() -> None:
    from harness.report.journal import Check
    from harness.report.result import ScenarioResult
    from harness.search.reproduce import RepeatOutcome

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


def test_a_binary_file_is_refused_as_not_text(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(incident.IncidentError, match="not a text file"):
        incident.load(path)
    result = CliRunner().invoke(main, ["reproduce", str(path)])
    assert result.exit_code == 2 and "not a text file" in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "1e9", "x"])
def test_a_soak_window_scale_that_is_not_a_finite_sane_number_is_refused_at_once(value: str) -> None:
    result = CliRunner().invoke(main, ["soak", "--plan-only", "--window-scale", value])
    assert result.exit_code == 2 and "--window-scale" in result.output


def test_an_expect_custom_key_no_check_reads_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text('[incident]\nname = "c"\ndescription = "d"\n\n[expect]\nno_loss = true\n'
                    '[expect.custom]\nnobody_reads_me = true\n')
    with pytest.raises(incident.IncidentError, match=r"custom.toml:5: \[expect\]: expect.custom.nobody_reads_me"):
        incident.load(path)


PROTOCOL_STEP = GOOD.replace('fault = "link_down"\nlink = "kafka"\n', "{step}\n")


@pytest.mark.parametrize("step,fragment", [
    ('fault = "redis_command_error"\ncommand = "XADD"\nprobability = nan', "probability: Input should be a finite"),
    ('fault = "redis_command_error"\ncommand = "XADD"\nprobability = 1.5', "probability: Input should be less than"),
    ('fault = "redis_command_error"\ncommand = "XADD"\nanswer = "ERR"', "answer: Input should be 'OOM'"),
    ('fault = "redis_command_error"\ncommand = "xadd; FLUSHALL"', "command: String should match pattern"),
    ('fault = "redis_command_error"\ncommand = "XADD"\nnth = 0', "nth: Input should be greater than or equal to 1"),
    ('fault = "redis_command_error"\ncommand = "XADD"\ntimes = -1', "times: Input should be greater than or equal"),
    ('fault = "postgres_statement_error"\nanswer = "99999"', "answer: Input should be '40001'"),
    ('fault = "postgres_statement_error"\nafter_rows = 3', "after_rows is for answer"),
    ('fault = "postgres_statement_error"\nstatement = ""', "statement: String should have at least 1 character"),
    ('fault = "postgres_statement_error"\nseed = inf', "seed: Input should be a valid integer"),
    ('fault = "postgres_login_refused"\nsqlstate = 53300', "sqlstate: Input should be '53300'"),
    ('fault = "clock_jump"\nseconds = 1e12', "seconds: Input should be a valid integer"),
    ('fault = "clock_jump"\nseconds = 100000', "seconds: Input should be less than or equal to 86400"),
    ('fault = "clock_jump"\nseconds = 0', "a jump of 0 s is no jump"),
    ('fault = "clock_jump"', "seconds"),
])
def test_bad_parameters_of_the_protocol_and_clock_faults_are_refused_at_their_line(tmp_path: Path, step: str,
                                                                                   fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(PROTOCOL_STEP.format(step=step))
    with pytest.raises(incident.IncidentError) as info:
        incident.load(path)
    assert fragment in str(info.value) and str(info.value).startswith(f"{path}:"), str(info.value)
    assert CliRunner().invoke(main, ["reproduce", str(path)]).exit_code == 2


def test_short_steps_are_written_as_their_own_tables_after_the_incident(tmp_path: Path) -> None:
    """tomli-w wrote short steps as one inline array before [incident]: unreadable, and a refused
    step could not be named by its line."""
    path = tmp_path / "short.toml"
    path.write_text(GOOD)
    text = incident.dumps(incident.load(path))
    assert text.count("[[steps]]") == 1 and text.index("[incident]") < text.index("[[steps]]")
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('link = "kafka"', 'link = "mysql"'))
    with pytest.raises(incident.IncidentError, match=r"broken.toml:\d+: .*step 1 \(LinkDown\): unknown link 'mysql'"):
        incident.load(broken)
