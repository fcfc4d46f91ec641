"""Locust load in scenarios, on the real stack: writes from Locust users land in the ledger (so
the loss check covers them), results land in the report, distributed mode uses worker
processes, and nothing of Locust outlives its step."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from harness.cli.pytest_plugin import assert_scenario_passed
from harness.scenario import Expect, LinkDown, Load, Scenario, Step, Workload

pytestmark = pytest.mark.faultline


def locust_processes(under: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if "locust" in " ".join(proc.info["cmdline"] or []) and str(under) in (proc.info["cwd"] or ""):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow  # nox -s tests keeps its 12 minutes; CI's mutants runs the catalogue's Locust scenario
@pytest.mark.timeout(240)
def test_source_and_api_load_flow_through_and_every_load_write_is_reconciled(run_scenario, tmp_path: Path) -> None:  # noqa: ANN001
    scenario = Scenario(
        name="load_flow", description="Locust writers (two worker processes) and API users, no faults",
        workload=Workload(records=100, before_fraction=1.0),
        steps=(Step("during", Load("source", users=4, workers=2, wait_s=0.05, rows_per_write=5), at=0.0, duration=8),
               Step("during", Load("api", users=4, wait_s=0.1, rows_per_write=5), at=0.0, duration=8)),
        during_s=8.0)
    result = run_scenario(scenario)
    assert_scenario_passed(result)
    assert result.ledger is not None
    source, api = sorted(result.load, key=lambda load: load.kind, reverse=True)
    assert source.kind == "source" and api.kind == "api"
    writes = {r.name: r for r in source.requests}["insert rows"]
    assert writes.requests > 20 and writes.failures == 0 and writes.p99_ms is not None
    ledger_ok = result.ledger.writes["ok"]
    assert ledger_ok == 100 + 5 * writes.requests  # every Locust write is in the ledger
    assert result.ledger.counts["delivered_intact"] == ledger_ok  # ... and was checked in the sink
    by_name = {r.name: r for r in api.requests}
    assert by_name["POST /exports"].requests > 0 and by_name["Aggregated"].failures == 0
    load_dirs = sorted(tmp_path.glob("load_flow/load-*"))
    journals = sorted(load_dirs[0].glob("journal-*.tsv"))
    assert len(journals) >= 2  # distributed mode: worker processes each kept their journal
    assert not locust_processes(tmp_path)


# Slow (16 s): the catalogue's locust_load_under_faults judges Locust's writes in every mutants run.
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_loss_check_covers_writes_made_by_locust(run_scenario) -> None:  # noqa: ANN001
    scenario = Scenario(
        name="load_loss", description="only Locust writes during a Kafka outage, with a sender that acks early",
        workload=Workload(records=100, before_fraction=1.0),
        steps=(Step("during", Load("source", users=4, wait_s=0.05, rows_per_write=5), at=0.0, duration=8),
               Step("during", LinkDown("kafka"), at=1.0, duration=5.0)),
        exporter_env={"EXPORTER_KAFKA_MESSAGE_TIMEOUT_MS": "1500"}, expect=Expect(), during_s=8.0)
    result = run_scenario(scenario, extra_env={"FAULTLINE_EXPORTER_DEFECT": "ack_before_send"})
    assert result.verdict == "fail", result.error
    lost = next(c for c in result.checks if c.name == "no_loss")
    assert not lost.ok
    # The harness's own writes are ids 1..100 (all written before the fault); these came from Locust.
    assert result.ledger is not None
    lost_ids = result.ledger.samples["lost"]
    assert lost_ids and min(lost_ids) > 100
