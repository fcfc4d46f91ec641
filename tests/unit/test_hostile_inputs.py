"""No false green from any input (issue 26): each case found by feeding the CLI malformed input
is refused with exit 2 and the field named, never read for ever, never a traceback, never a pass."""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from incident_texts import GOOD

from harness.catalogue import incident
from harness.cli.main import main
from harness.inputs import read_bounded
from harness.model.target import BUNDLED, TargetDefinition, TargetError
from harness.play.gate import exit_code_of
from harness.report.compare import compare, regressions
from harness.report.journal import Check
from harness.report.report_file import ReportUnreadable, read_report
from harness.report.result import RunReport, ScenarioResult, Verdict


def _refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(incident.IncidentError) as info:
        incident.load(path)
    assert fragment in str(info.value) and f"{path}:" in str(info.value), info.value
    result = CliRunner().invoke(main, ["reproduce", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output


# -- files that are not files -------------------------------------------------------------------------
def test_a_fifo_is_refused_at_once_not_read_for_ever(tmp_path: Path) -> None:
    fifo = tmp_path / "incident.toml"
    os.mkfifo(fifo)
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(CliRunner().invoke(main, ["reproduce", str(fifo)]).exit_code),
                              daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done == [2], "a FIFO blocked the reader"
    with pytest.raises(TargetError, match="not a regular file"):
        TargetDefinition.load(fifo)


def test_a_device_and_an_oversized_file_are_refused_without_reading_them(tmp_path: Path) -> None:
    with pytest.raises(incident.IncidentError, match="not a regular file"):
        incident.load(Path("/dev/zero"))
    big = tmp_path / "big.toml"
    with big.open("wb") as handle:
        handle.truncate(40 * 1024 * 1024)  # sparse: no disk spent
    with pytest.raises(incident.IncidentError, match="at most"):
        incident.load(big)
    with pytest.raises(ReportUnreadable, match="not a regular file"):
        read_report(Path("/dev/zero"))


def test_read_bounded_refuses_a_directory_and_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(incident.IncidentError, match="is a directory"):
        read_bounded(tmp_path, "incident file", incident.IncidentError, 10)


@pytest.mark.parametrize("text,fragment", [
    ("a = " + "[" * 400 + "1" + "]" * 400 + "\n", "nested"),
    ("a = " + "[" * 40 + "1" + "]" * 40 + "\n", "nested 3"),
    (GOOD.replace('description = "Kafka', 'description = "\\u0000Kafka'), None),  # a NUL escape is text, not a byte
])
def test_deep_nesting_is_refused_by_a_limit_not_a_crash(tmp_path: Path, text: str, fragment: str | None) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(text)
    if fragment is None:
        assert incident.load(path).description.startswith("\x00")
        return
    with pytest.raises(incident.IncidentError, match=fragment):
        incident.load(path)


# -- nonsense that used to run ------------------------------------------------------------------------
@pytest.mark.parametrize("edit,fragment", [
    (lambda t: t.replace("records = 100", "records = 0"), "workload.records is 0"),
    (lambda t: t.replace("no_loss = true", "no_loss = false\nno_corruption = false\ndead_letters_have_reasons = false"
                         "\nprocess_alive = false\npause_within_grace = false\npause_honoured = false\n"
                         "protocol_faults_met = false\nmetrics_agree = false\nkey_order = false"), "every check"),
    (lambda t: t.replace('fault = "link_down"', 'fault = "link_down"\naction = "checkpoint"'), "both `fault"),
    (lambda t: t.replace("records = 100", 'records = 100\nprofile = "../../etc/passwd"'), "not a payload profile"),
    (lambda t: t.replace("[expect]", '[knobs]\nbatch_size = "nan"\n\n[expect]'), "knobs.batch_size must be a whole"),
    (lambda t: t.replace("[expect]", '[knobs]\nbatch_size = "-5"\n\n[expect]'), "knobs.batch_size must be a whole"),
    (lambda t: t.replace("[expect]", '[knobs]\nsink = "s3"\n\n[expect]'), "knobs.sink must be one of"),
    (lambda t: t.replace('name = "demo"', 'name = "a\\nb"'), "Scenario.name"),
    (lambda t: t.replace("[expect]", '[exporter_env]\n"A=B" = "1"\n\n[expect]'), "exporter_env"),
    (lambda t: t + '\n[[steps]]\nat = 0.5\naction = "export"\nname = "x.jsonl"\nencoding = "klingon"\n',
     "'klingon' is not an encoding"),
    (lambda t: t + '\n[[steps]]\nat = 1.0\nduration = 1.0\nfault = "kill_exporter"\n\n[[steps]]\nat = 1.5\n'
     'duration = 1.0\nfault = "freeze_exporter"\n', "the exporter's process"),
    (lambda t: t + '\n[[steps]]\nat = 1.0\nduration = 1.0\nfault = "link_flap"\nlink = "kafka"\n',
     "whether link kafka is up"),
    (lambda t: t + '\n[[steps]]\nat = 2.5\nduration = 1e-300\nfault = "link_down"\nlink = "kafka"\n', "0.05"),
])
def test_nonsense_is_refused_before_anything_starts(tmp_path: Path, edit, fragment: str) -> None:  # noqa: ANN001
    _refused(tmp_path, edit(GOOD), fragment)


def test_a_trivial_scenario_runs_when_it_says_it_means_it(tmp_path: Path) -> None:
    path = tmp_path / "trivial.toml"
    path.write_text(GOOD.replace("records = 100", "records = 0").replace(
        'description = "Kafka down for a while"', 'description = "smoke"\nallow_trivial = true'))
    scenario = incident.load(path)
    assert scenario.allow_trivial and scenario.workload.records == 0
    again = incident.write(scenario, tmp_path / "again.toml")
    assert incident.load(again) == scenario


# -- incident files written back ----------------------------------------------------------------------
def test_what_loads_is_written_back_loadable(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(GOOD.replace('description = "Kafka down for a while"',
                                 'description = "line one\\nline \\"two\\" \\\\ three"')
                    .replace("[expect]", '[exporter_env]\n"A.B" = "1"\n"x y" = "tab\\there"\n\n[expect]'))
    scenario = incident.load(path)
    incident.write(scenario, path, comment="rewritten\nby the test")
    assert incident.load(path) == scenario
    assert scenario.exporter_env == {"A.B": "1", "x y": "tab\there"}


def test_a_file_that_would_not_read_back_never_replaces_the_users(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    scenario = incident.load(path)
    monkeypatch.setattr(incident, "dumps", lambda *_args, **_kw: "[incident\n")
    with pytest.raises(incident.IncidentError, match="not written, it would not read back"):
        incident.write(scenario, path)
    assert path.read_text() == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["mine.toml"]  # no temporary left behind


# -- targets ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("edit,fragment", [
    (lambda t: t.replace('command = ["{python}", "-m", "exporter"]', 'command = [""]'), "command.0"),
    (lambda t: t.replace('command = ["{python}", "-m", "exporter"]', 'command = ["{0}"]'), "unknown placeholder {0}"),
    (lambda t: t.replace('command = ["{python}", "-m", "exporter"]', 'command = ["{python"]'), "not a template"),
    (lambda t: t.replace('ready_path = "/healthz"', 'ready_path = "/healthz\\r\\nX: y"'), "ready_path"),
    (lambda t: t.replace('ready_path = "/healthz"', 'ready_path = "//host/x"'), "ready_path"),
    (lambda t: t.replace('name = "bundled-exporter"', 'name = "a\\nb"'), "name"),
    (lambda t: t + '\n[log]\nformat = "pattern"\npattern = "(?P<level>a+)+(?P<msg>.*)"\n', "backtrack"),
])
def test_a_bad_target_is_refused_at_load(tmp_path: Path, edit, fragment: str) -> None:  # noqa: ANN001
    path = tmp_path / "target.toml"
    path.write_text(edit(BUNDLED.read_text()))
    with pytest.raises(TargetError) as info:
        TargetDefinition.load(path)
    assert fragment in str(info.value) and f"{path}:" in str(info.value), info.value


# -- reports and compare ------------------------------------------------------------------------------
def _report(tmp_path: Path) -> dict:
    scenario = ScenarioResult("baseline", "d", None, verdict=Verdict.PASS, recovery_s=1.0,
                              checks=[Check("no_loss", True, "0 lost")])
    report = RunReport(run_id="r", target="t", backend="local", verdict=Verdict.PASS, duration_s=1.0,
                       scenarios=[scenario])
    return json.loads(report.to_json())


def _edited(tmp_path: Path, name: str, edit) -> Path:  # noqa: ANN001
    data = copy.deepcopy(_report(tmp_path))
    edit(data)
    directory = tmp_path / name
    directory.mkdir()
    (directory / "report.json").write_text(json.dumps(data))
    return directory


@pytest.mark.parametrize("name,edit,fragment", [
    ("nan", lambda d: d["scenarios"][0].__setitem__("recovery_s", float("nan")), "NaN is not a JSON number"),
    ("inf", lambda d: d.__setitem__("duration_s", float("inf")), "Infinity is not a JSON number"),
    ("schema_true", lambda d: d.__setitem__("schema", True), "schema True"),
    ("schema_float", lambda d: d.__setitem__("schema", 1.0), "schema 1.0"),
    ("negative", lambda d: d["scenarios"][0].__setitem__("recovery_s", -5), "recovery_s: -5.0 is negative"),
    ("repeat", lambda d: d.__setitem__("repeat", 1e30), "field repeat"),
    ("pass_failed", lambda d: d["scenarios"][0]["checks"][0].__setitem__("ok", False), "pass, yet check no_loss"),
    ("none_judged", lambda d: d.__setitem__("scenarios", []), "nothing judged"),
])
def test_compare_refuses_a_report_it_cannot_trust(tmp_path: Path, name: str, edit, fragment: str) -> None:  # noqa: ANN001
    good = _edited(tmp_path, "good", lambda d: None)
    bad = _edited(tmp_path, name, edit)
    with pytest.raises(ReportUnreadable, match="report.json") as info:
        read_report(bad / "report.json")
    assert fragment in str(info.value)
    result = CliRunner().invoke(main, ["compare", str(good), str(bad), "--fail-on", "regression"])
    assert result.exit_code == 2, result.output


def test_a_scenario_that_vanished_is_a_regression(tmp_path: Path) -> None:
    good = _edited(tmp_path, "good", lambda d: None)
    emptied = _edited(tmp_path, "empty", lambda d: (d.__setitem__("scenarios", []), d.__setitem__("verdict", "error")))
    rows = compare(read_report(good / "report.json"), read_report(emptied / "report.json"))
    assert regressions(rows, 2.0) == ["baseline: pass -> absent (B did not judge it)"]
    result = CliRunner().invoke(main, ["compare", str(good), str(emptied), "--fail-on", "regression"])
    assert result.exit_code == 1, result.output


def test_nothing_judged_is_never_a_pass() -> None:
    assert exit_code_of([]) == 2
    skipped = ScenarioResult("s", "d", None, verdict=Verdict.SKIPPED, skipped="no docker")
    assert exit_code_of([skipped]) == 2


# -- CLI options --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,fragment", [
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**70)], "--seed"),
    (["--duration", "2h", "--rate", "10000"], "at most 10000000 are judged"),
    (["--duration", "8d"], "cannot read duration"),
    (["--window-scale", "nan"], "--window-scale"),
])
def test_soak_options_out_of_range_are_refused(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(main, ["soak", "--plan-only", *args])
    assert result.exit_code == 2 and fragment in " ".join(result.output.split()), result.output


def test_soak_plans_at_the_edges_of_their_ranges_are_valid(tmp_path: Path) -> None:
    tiny = CliRunner().invoke(main, ["soak", "--plan-only", "--window-scale", "0.01", "--duration", "2m"])
    assert tiny.exit_code == 0, tiny.output
    path = tmp_path / "tiny.toml"
    path.write_text(tiny.output)
    assert min(s.duration for s in incident.load(path).steps if s.duration is not None) >= 0.5
    from harness.search.soak import SoakPlan, parse_duration, schedule

    long = schedule(SoakPlan(parse_duration("30h"), seed=1, rate=10))  # past a day: README allows a week
    assert long.during_s == 30 * 3600 and len(long.steps) > 10_000


@pytest.mark.parametrize("args,fragment", [
    (["run", "--out", "/proc/nope", "baseline"], "'/proc/nope' cannot be written to"),
    (["soak", "--out", "/proc/nope"], "'/proc/nope' cannot be written to"),
    (["explore", "--runs", "1", "--out", "/proc/nope"], "'/proc/nope' cannot be written to"),
    (["bench", "../../x/benchmod"], "no benchmark '../../x/benchmod'"),
    (["explore", "--plan-only", "--budget", "99999h"], "--budget must be between 1s and 7 days"),
    (["explore", "--plan-only", "--runs", "1", "--defect", "nope"], "--defect 'nope'"),
    (["soak", "--plan-only", "--knob", "batch_size=nan"], "knobs.batch_size must be a whole number"),
    (["run", "baseline", "-j", "0"], "'-j' / '--jobs': 0 is not in the range 1<=x<=16"),
    (["explore", "--runs", "1", "-j", "nan"], "'-j' / '--jobs': 'nan' is not a valid integer"),
    (["mutants", "-j", "17"], "'-j' / '--jobs': 17 is not in the range 1<=x<=16"),
    (["run", "baseline", "--backend", "external", "-j", "2"], "-j 2 on the external backend: its servers are shared"),
    (["bench", "--write"], "--table prints README's table"),
])
def test_options_that_would_fail_late_are_refused_first(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and fragment in " ".join(result.output.split()), result.output


def test_a_target_that_uses_no_server_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "target.toml"
    path.write_text(BUNDLED.read_text().replace('name = "bundled-exporter"', 'name = "x"\nuses = []'))
    with pytest.raises(TargetError, match=r"target.toml:\d+: uses"):
        TargetDefinition.load(path)
    result = CliRunner().invoke(main, ["explore", "--plan-only", "--runs", "1", "--target", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_the_gate_says_how_many_scenarios_it_judged() -> None:
    from harness.cli.output import judged_line

    held = ScenarioResult("a", "d", None, verdict=Verdict.PASS)
    skipped = ScenarioResult("b", "d", None, verdict=Verdict.SKIPPED, skipped="no docker")
    assert judged_line([held, skipped]) == "judged 1 of 2 scenario(s): 1 held, 0 failed, 1 skipped"
    assert "nothing was judged, so this is not a pass" in judged_line([skipped])


def test_check_validates_every_kind_of_input_and_starts_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    report = _edited(tmp_path, "run", lambda d: None)
    shipped = [str(p) for p in (BUNDLED.parent.glob("*.toml"))]
    result = CliRunner().invoke(main, ["check", str(good), str(report), "scenarios/baseline.py", *shipped])
    assert result.exit_code == 0, result.output
    assert "incident file demo" in result.output and "report of run r" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("records = 100", "records = 0"))
    neither = tmp_path / "neither.toml"
    neither.write_text("x = 1\n")
    result = CliRunner().invoke(main, ["check", str(good), str(bad), str(neither)])
    assert result.exit_code == 2 and "2 of 3 file(s) refused" in result.output
    text = " ".join(result.output.split())
    assert f"{bad}:" in text and "workload.records is 0" in text and "neither an incident file" in text


@pytest.mark.parametrize("command", [["list"], ["run", "baseline"], ["explore", "--plan-only", "--runs", "1"],
                                     ["mutants"]])
def test_a_target_steps_module_that_exits_on_import_is_exit_2_never_0(tmp_path: Path, command: list[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "exits_zero_probe.py").write_text("raise SystemExit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    target = tmp_path / "target.toml"
    target.write_text('steps = ["exits_zero_probe"]\n' + BUNDLED.read_text())
    result = CliRunner().invoke(main, [*command, "--target", str(target)])
    assert result.exit_code == 2, result.output
    assert "module 'exits_zero_probe' failed to load: SystemExit: 0" in " ".join(result.output.split())


def test_a_soak_plan_with_a_dotted_environment_key_is_a_file_reproduce_takes(tmp_path: Path) -> None:
    printed = CliRunner().invoke(main, ["soak", "--plan-only", "--duration", "2m", "--exporter-env", "A.B=1"])
    assert printed.exit_code == 0, printed.output
    path = tmp_path / "plan.toml"
    path.write_text(printed.output)
    assert incident.load(path).exporter_env == {"A.B": "1"}
