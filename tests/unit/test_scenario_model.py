"""Scenario definitions are validated with messages naming the scenario, step and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.gate import exit_code_of
from harness.mutants import plan
from harness.registry import discover, load_file
from harness.runner import Check, ScenarioResult
from harness.scenario import KillExporter, LinkDown, Pause, Scenario, ScenarioError, Step, Toxic
from harness.target import TargetDefinition


def make(**kwargs: object) -> Scenario:
    return Scenario(name="s", description="d", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("steps,fragment", [
    ((Step("sometime", LinkDown("redis")),), "phase must be one of"),
    ((Step("during", LinkDown("mysql")),), "unknown link 'mysql'"),
    ((Step("during", Toxic("kafka", "latency", attributes={"delay": 1})),), "unknown attributes ['delay']"),
    ((Step("during", LinkDown("redis"), at=-1),), "at must be >= 0"),
    ((Step("before", KillExporter()),), "faults belong in the 'during' phase"),
])
def test_bad_steps_are_refused_naming_the_step(steps: tuple, fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        make(steps=steps).validate()
    assert fragment in str(info.value) and "scenario 's': step 0" in str(info.value)


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
    from harness.gate import consistency

    a = ScenarioResult("lat", "", None, verdict="pass")
    b = ScenarioResult("lat", "", None, verdict="fail", checks=[Check("no_loss", False, "1 lost")])
    c = ScenarioResult("lat", "", None, verdict="fail", checks=[Check("metrics_agree", False, "off")])
    assert consistency([a, a]) == {"lat": ["pass:", "pass:"]}
    assert len(set(consistency([a, b, c])["lat"])) == 3
