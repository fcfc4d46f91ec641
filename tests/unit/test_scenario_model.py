"""Scenario definitions are validated with messages naming the scenario, step and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.catalogue.registry import discover, load_file
from harness.model.target import TargetDefinition
from harness.play.gate import exit_code_of
from harness.report.journal import Check
from harness.report.result import ScenarioResult
from harness.scenario import (
    Expect,
    KillExporter,
    LinkDown,
    Pause,
    RestartService,
    Scenario,
    ScenarioError,
    Step,
    Toxic,
    Workload,
    explain,
)
from harness.search.mutants import plan


def make(**kwargs: object) -> Scenario:
    return Scenario(name="s", description="d", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("steps,fragment", [
    (lambda: (Step("during", LinkDown("mysql")),), "unknown link 'mysql'"),
    (lambda: (Step("during", Toxic("kafka", "latency", attributes={"delay": 1})),), "unknown attributes ['delay']"),
    (lambda: (Step("before", KillExporter()),), "faults belong in the 'during' phase"),
    (lambda: (Step("during", RestartService("mysql")),), "unknown service 'mysql'"),
])
def test_bad_steps_are_refused_naming_the_step(steps: tuple, fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        make(steps=steps()).validate()
    assert fragment in str(info.value) and "scenario 's': step 1" in str(info.value)


class NotAStep:
    """An object a scenario might put in a step by mistake: it must be refused, never 'applied'."""


@pytest.mark.parametrize("build,fragment", [
    (lambda: Step("sometime", LinkDown("redis")), "Step.phase: Input should be 'before', 'during' or 'after'"),
    (lambda: Step("during", LinkDown("redis"), at=-1), "Step.at: Input should be greater than or equal to 0"),
    (lambda: Step("during", LinkDown("redis"), at=float("nan")), "Step.at: Input should be a finite number"),
    (lambda: Step("during", LinkDown("redis"), duration=float("inf")), "Step.duration: Input should be a finite"),
    (lambda: Step("during", NotAStep()), "Step.do: a NotAStep is not a step kind Faultline knows"),
    (lambda: Workload(records=10**18), "Workload.records: Input should be less than or equal to 10000000"),
    (lambda: Expect(no_loss="false"), "Expect.no_loss: Input should be a valid boolean (got 'false')"),
    (lambda: Pause(-5.0), "Pause.grace_s: Input should be greater than or equal to 0"),
    (lambda: Toxic("kafka", "latency", attributes=5), "Toxic.attributes: Input should be a valid dictionary"),
    (lambda: Scenario(name=42, description="d"), "Scenario.name: Input should be a valid string"),
    (lambda: Scenario(name="s", description="d", steps=5), "Scenario.steps: Input should be a valid tuple"),
])
def test_bad_fields_are_refused_when_made_with_the_field_named(build, fragment: str) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError) as info:
        build()
    assert explain(info.value).startswith(fragment), explain(info.value)


def test_a_scenario_module_with_a_bad_field_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "nan_window.py").write_text(
        "from harness.scenario import LinkDown, Scenario, Step\n"
        "SCENARIO = Scenario(\n"
        "    name='nan_window', description='d',\n"
        "    steps=(Step('during', LinkDown('kafka'), duration=float('nan')),),\n"
        ")\n")
    with pytest.raises(ScenarioError) as info:
        load_file(tmp_path / "nan_window.py")
    assert str(info.value).startswith(f"{tmp_path / 'nan_window.py'}:4: Step.duration: Input should be a finite")


def test_actions_may_sit_in_any_phase() -> None:
    make(steps=(Step("after", Pause(1.0)),)).validate()


def test_registry_names_the_file_of_a_bad_scenario(tmp_path: Path) -> None:
    (tmp_path / "nothing.py").write_text("X = 1\n")
    with pytest.raises(ScenarioError, match="nothing.py: defines no SCENARIO"):
        load_file(tmp_path / "nothing.py")
    (tmp_path / "broken.py").write_text("import no_such_module\n")
    with pytest.raises(ScenarioError, match="broken.py: failed to import: ModuleNotFoundError"):
        load_file(tmp_path / "broken.py")
    (tmp_path / "other.py").write_text(
        "from harness.scenario import Scenario\nSCENARIO = Scenario(name='different', description='d')\n")
    with pytest.raises(ScenarioError, match="must match the file name 'other'"):
        load_file(tmp_path / "other.py")


def test_every_declared_defect_is_claimed_by_a_shipped_scenario() -> None:
    target = TargetDefinition.load()
    by_defect = plan(target, list(discover().values()))
    assert set(by_defect) == set(target.defects) and all(by_defect.values())


def test_mutants_refuses_an_unclaimed_defect() -> None:
    target = TargetDefinition.load()
    with pytest.raises(ScenarioError, match="no scenario claims to catch"):
        plan(target, [make()])


def test_exit_codes_rank_harness_errors_above_violations() -> None:
    ok = ScenarioResult("a", "", None, verdict="pass")
    bad = ScenarioResult("b", "", None, verdict="fail", checks=[Check("no_loss", False, "1 lost")])
    err = ScenarioResult("c", "", None, verdict="error", error="boom")
    assert (exit_code_of([ok]), exit_code_of([ok, bad]), exit_code_of([bad, err])) == (0, 1, 2)


def test_repeated_runs_must_fail_the_same_invariants_to_count_as_identical() -> None:
    from harness.play.gate import consistency

    a = ScenarioResult("lat", "", None, verdict="pass")
    b = ScenarioResult("lat", "", None, verdict="fail", checks=[Check("no_loss", False, "1 lost")])
    c = ScenarioResult("lat", "", None, verdict="fail", checks=[Check("metrics_agree", False, "off")])
    assert consistency([a, a]) == {"lat": ["pass:", "pass:"]}
    assert len(set(consistency([a, b, c])["lat"])) == 3


@pytest.mark.parametrize("raised", ["SystemExit(0)", "SystemExit(3)", "GeneratorExit()"])
def test_a_scenario_or_step_module_that_exits_on_import_is_an_error_naming_it(tmp_path: Path, raised: str) -> None:
    import sys

    from harness.steps import StepKindError, load_modules

    (tmp_path / "exits.py").write_text(f"raise {raised}\n")
    with pytest.raises(ScenarioError, match="exits.py: failed to import"):
        load_file(tmp_path / "exits.py")
    (tmp_path / "exiting_steps_probe.py").write_text(f"raise {raised}\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(StepKindError, match="target.toml: step module: module 'exiting_steps_probe' failed"):
            load_modules(["exiting_steps_probe"], "target.toml")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("exiting_steps_probe", None)


def test_a_python_scenario_with_two_faults_of_a_kind_on_one_target_at_once_is_refused(tmp_path: Path) -> None:
    """The rule incident files keep holds for Python scenarios too, with the file and the step's line."""
    (tmp_path / "two_downs.py").write_text(
        "from harness.scenario import LinkDown, Scenario, Step, Workload\n"
        "SCENARIO = Scenario(\n"
        "    name='two_downs', description='d', workload=Workload(records=10),\n"
        "    steps=(Step('during', LinkDown('kafka'), at=0.0, duration=2.0),\n"
        "           Step('during', LinkDown('redis'), at=0.5, duration=1.0),\n"
        "           Step('during', LinkDown('kafka'), at=1.5, duration=1.0)),\n"
        ")\n")
    with pytest.raises(ScenarioError) as info:
        load_file(tmp_path / "two_downs.py")
    assert str(info.value).startswith(f"{tmp_path / 'two_downs.py'}:6: scenario 'two_downs': step 3 overlaps step 1")
    assert info.value.field_name == "at" and info.value.step == 2
    # One after the other on the same link is fine.
    make(steps=(Step("during", LinkDown("kafka"), at=0.0, duration=1.0),
                Step("during", LinkDown("kafka"), at=1.0, duration=1.0))).validate()
