"""Every input format fuzzed (issue 26): incident files, target definitions, report.json and the
CLI's options, each drawn as a valid document with random damage (a value of the wrong type or
absurd size, NaN, control characters, a key added or dropped, a broken line). The property:
a loader returns a valid object or refuses with its own error naming the file; never another
exception, never a hang; the CLI exits 0 only for valid input and 2 with a field otherwise.
``FAULTLINE_FUZZ_CASES`` sets the examples per property (the slow session runs many more)."""

from __future__ import annotations

import copy
import json
import math
import os
import time
import tomllib
from typing import Any

import pytest
import tomlkit
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.catalogue import incident
from harness.catalogue.registry import discover
from harness.cli.main import main
from harness.model.target import BUNDLED, TargetDefinition, TargetError
from harness.report.report_file import ReportUnreadable, read_report
from harness.report.result import RunReport, ScenarioResult, Verdict

CASES = int(os.environ.get("FAULTLINE_FUZZ_CASES", "60"))
FUZZ = settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LOAD_BOUND_S = 5.0  # a refusal or a load of one small document takes far less

# Values a hostile or careless file holds: wrong types, absurd sizes, non-finite numbers, text
# with control characters, nesting.
SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=30), st.sampled_from(["", "\x00", "a\nb", "{0}", "{python", "../../etc/passwd",
                                                          "nan", "-5", "1e300", "ACCESS EXCLUSIVE", "kafka"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a parsed document a value can be put (table keys and array items)."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for n, value in enumerate(doc):
            found += _paths(value, (*prefix, n))
    return found


@st.composite
def damaged(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with one to three random edits: a value replaced, a key dropped, a key added."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths)) if paths else ()
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if path and action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif path and action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
    return doc


def _toml(doc: dict[str, Any]) -> str | None:
    try:
        return tomlkit.dumps(doc)
    except (TypeError, ValueError):  # a None or a key TOML cannot hold: not a file anyone can write
        return None


@st.composite
def broken_text(draw: st.DrawFn, text: str) -> str:
    """A line of the text replaced by another, or by garbage."""
    lines = text.splitlines()
    n = draw(st.integers(0, max(0, len(lines) - 1)))
    lines[n] = draw(st.one_of(st.text(max_size=40), st.sampled_from(lines)))
    return "\n".join(lines) + "\n"


INCIDENT = incident.document(discover()["kafka_produce_errors"])
INCIDENT_TEXT = incident.dumps(discover()["kafka_produce_errors"])


def _bounded(call: Any) -> Any:
    started = time.monotonic()
    try:
        return call()
    finally:
        assert time.monotonic() - started < LOAD_BOUND_S


@FUZZ
@given(doc=damaged(INCIDENT))
def test_a_damaged_incident_file_loads_or_is_refused_naming_the_file(tmp_path_factory: pytest.TempPathFactory,
                                                                     doc: dict[str, Any]) -> None:
    text = _toml(doc)
    if text is None:
        return
    path = tmp_path_factory.mktemp("incident") / "fuzzed.toml"
    path.write_text(text)
    checked = CliRunner().invoke(main, ["check", str(path)])  # the CLI agrees with the loader
    try:
        scenario = _bounded(lambda: incident.load(path))
    except incident.IncidentError as exc:
        assert str(exc).startswith(f"{path}:") or f"incident file {path}" in str(exc), exc
        assert checked.exit_code == 2 and "Traceback" not in checked.output, checked.output
        return
    assert checked.exit_code == 0, checked.output
    again = incident.write(scenario, path.with_name("again.toml"))  # what loads is written back loadable
    assert incident.load(again) == scenario


@FUZZ
@given(text=broken_text(INCIDENT_TEXT))
def test_a_broken_incident_file_is_refused_or_loads(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("incident") / "broken.toml"
    path.write_text(text)
    try:
        _bounded(lambda: incident.load(path))
    except incident.IncidentError as exc:
        assert str(path) in str(exc)


TARGET = tomllib.loads(BUNDLED.read_text())


@FUZZ
@given(doc=damaged(TARGET))
def test_a_damaged_target_definition_loads_or_is_refused_naming_the_file(tmp_path_factory: pytest.TempPathFactory,
                                                                         doc: dict[str, Any]) -> None:
    text = _toml(doc)
    if text is None:
        return
    path = tmp_path_factory.mktemp("target") / "fuzzed.toml"
    path.write_text(text)
    checked = CliRunner().invoke(main, ["check", str(path)])
    try:
        target = _bounded(lambda: TargetDefinition.load(path))
    except TargetError as exc:
        assert str(path) in str(exc), exc
        assert checked.exit_code == 2 and "Traceback" not in checked.output, checked.output
        return
    assert checked.exit_code == 0 or "steps" in doc, checked.output  # check also imports its step modules
    assert target.command and target.uses  # what loads is whole


def _report() -> dict[str, Any]:
    from harness.report.journal import Check

    scenario = ScenarioResult("baseline", "d", None, verdict=Verdict.PASS, recovery_s=1.0,
                              checks=[Check("no_loss", True, "0 lost")])
    return json.loads(RunReport(run_id="r", target="t", backend="local", verdict=Verdict.PASS, duration_s=1.0,
                                scenarios=[scenario]).to_json())


REPORT = _report()


@FUZZ
@given(doc=damaged(REPORT))
def test_a_damaged_report_is_read_whole_or_refused(tmp_path_factory: pytest.TempPathFactory,
                                                   doc: dict[str, Any]) -> None:
    directory = tmp_path_factory.mktemp("report")
    (directory / "report.json").write_text(json.dumps(doc))  # NaN and Infinity as Python writes them
    try:
        report = _bounded(lambda: read_report(directory / "report.json"))
    except ReportUnreadable as exc:
        assert "report" in str(exc)
        return
    # What is read back can be trusted: finite numbers, verdicts that agree with their checks.
    for scenario in report.scenarios:
        assert scenario.recovery_s is None or (math.isfinite(scenario.recovery_s) and scenario.recovery_s >= 0)
        assert scenario.verdict is not Verdict.PASS or not scenario.violations
    assert report.scenarios or report.verdict is not Verdict.PASS


OPTION_VALUES = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(str), st.text(max_size=12),
                          st.sampled_from(["0", "1", "nan", "inf", "-1", "1e400", "30h", "2h", "0.01", "", "10m"]))
SOAK_OPTIONS = ["--duration", "--seed", "--rate", "--load-users", "--window-scale", "--replays", "--knob",
                "--exporter-env", "--faults"]


@settings(max_examples=max(10, CASES // 3), deadline=None, derandomize=True, database=None)
@given(options=st.lists(st.tuples(st.sampled_from(SOAK_OPTIONS), OPTION_VALUES), min_size=1, max_size=3))
def test_soak_options_exit_0_with_a_loadable_plan_or_2_with_the_option_named(options: list[tuple[str, str]]) -> None:
    args = [part for option, value in options for part in (option, value)]
    result = _bounded(lambda: CliRunner().invoke(main, ["soak", "--plan-only", *args]))
    assert result.exit_code in (0, 2), (args, result.output[-500:])
    assert "Traceback" not in result.output and "internal error" not in result.output, (args, result.output[-800:])
    if result.exit_code == 0:
        assert tomllib.loads(result.output)["incident"]["name"].startswith("soak_seed")
