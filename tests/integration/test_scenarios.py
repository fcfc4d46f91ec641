"""Every scenario of the catalogue, through the pytest plugin, against the clean exporter."""

from __future__ import annotations

import pytest

from harness.pytest_plugin import assert_scenario_passed
from harness.registry import discover

pytestmark = pytest.mark.faultline
SCENARIOS = discover()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_holds_against_the_clean_exporter(run_scenario, name: str) -> None:  # noqa: ANN001
    result = run_scenario(SCENARIOS[name])
    assert_scenario_passed(result)
    assert result.ledger.count("delivered_intact") > 0
    assert all(step.applied_at is not None and step.removed_at is not None for step in result.steps)
