"""Every scenario of the catalogue, through the pytest plugin, against the clean exporter.

The whole catalogue takes about five minutes: one scenario of each family runs with the tests,
the rest carry the ``slow`` marker (``nox -s slow``). CI also runs every scenario against the
clean exporter in ``nox -s mutants``, which fails unless all of them pass."""

from __future__ import annotations

import pytest

from harness.catalogue.registry import discover
from harness.cli.pytest_plugin import assert_scenario_passed

pytestmark = pytest.mark.faultline
SCENARIOS = discover()


# One of a few families (processes, disks, the source, overlapping links). kafka_send_failures
# runs in test_gate_cli (side by side with baseline), kafka_topic_limit_lowered in
# test_seeded_defects; out_of_order_commits and redis_refuses_writes_oom went to the slow ones for
# the tests' 12 minutes (issue 30), and CI's mutants session runs every scenario clean.
WITH_THE_TESTS = {"baseline", "exporter_kill_restart", "disk_full_export", "postgres_table_locked",
                  "overlapping_faults"}


@pytest.mark.parametrize("name", [name if name in WITH_THE_TESTS else pytest.param(name, marks=pytest.mark.slow)
                                  for name in SCENARIOS])
def test_scenario_holds_against_the_clean_exporter(run_scenario, name: str) -> None:  # noqa: ANN001
    result = run_scenario(SCENARIOS[name])
    assert_scenario_passed(result)
    assert result.ledger.count("delivered_intact") > 0
    assert all(step.applied_at is not None and step.removed_at is not None for step in result.steps)


def test_the_scenarios_run_with_the_tests_exist() -> None:
    assert WITH_THE_TESTS <= set(SCENARIOS), sorted(WITH_THE_TESTS - set(SCENARIOS))
