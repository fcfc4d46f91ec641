"""A historical data-loss bug caught on a real third-party pipeline: debezium/dbz#1554 (events that
share a WAL position skipped after a restart), shipped as incidents/debezium/same_lsn_resume.toml.
The last release line before the fix (3.6.1.Final) loses records on it, named by id; the first
release with the fix (3.7.0.Final) holds on the same file. Slow: each losing replay waits out its
drain deadline, since no buffer says the missing records will never come."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalogue import incident
from harness.infra.stack import Stack
from harness.model.target import TargetDefinition
from harness.paths import project_root
from harness.play.runner import ScenarioRunner
from harness.report.result import Verdict

pytestmark = [pytest.mark.faultline, pytest.mark.slow, pytest.mark.timeout(1200)]
ROOT = project_root()
INCIDENT = ROOT / "incidents" / "debezium" / "same_lsn_resume.toml"
PAUSE_IN_BACKOFF = ROOT / "incidents" / "debezium" / "pause_during_restart_backoff.toml"
REPLAYS = 3


def replay(stack: Stack, target: str, tmp_path: Path, n: int, file: Path = INCIDENT) -> list:
    definition = TargetDefinition.load(ROOT / "targets" / target)
    scenario = incident.load(file)
    return [ScenarioRunner(stack, definition, scenario, tmp_path / f"{target}-{i}").run() for i in range(n)]


def test_the_release_before_the_fix_loses_records_named_by_id(fresh_stack: Stack, tmp_path: Path) -> None:
    results = replay(fresh_stack, "debezium-postgres-3.6.1.toml", tmp_path, REPLAYS)
    assert all(r.verdict in (Verdict.PASS, Verdict.FAIL) for r in results), [r.error for r in results]
    lost = [r for r in results if "no_loss" in {c.name for c in r.violations}]
    assert lost, f"3.6.1 held {REPLAYS} of {REPLAYS} replays: the incident no longer reproduces here"
    ids = lost[0].violation_ids["lost"]
    assert ids and all(isinstance(i, int) for i in ids)
    assert "source->sink" in next(c.detail for c in lost[0].violations if c.name == "no_loss")


def test_the_release_with_the_fix_holds_on_the_same_file(fresh_stack: Stack, tmp_path: Path) -> None:
    results = replay(fresh_stack, "debezium-postgres.toml", tmp_path, 2)
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.PASS], [
        (r.error, [c.detail for c in r.violations]) for r in results]


def test_explores_finding_replays_a_pause_is_not_honoured_during_the_restart_backoff(
        fresh_stack: Stack, tmp_path: Path) -> None:
    # Found by explore against 3.7.0 (run 5 of seed 1) and shrunk by it: a pause a second after a
    # Postgres link cut waits out the task's 10 s restart backoff, past its 3 s grace. Nothing lost.
    results = replay(fresh_stack, "debezium-postgres.toml", tmp_path, 2, PAUSE_IN_BACKOFF)
    for result in results:
        assert {c.name for c in result.violations} == {"pause_within_grace"}, [
            (result.error, [c.detail for c in result.violations])]
        assert result.ledger.count("lost") == 0
    log = (tmp_path / "debezium-postgres.toml-0" / "debezium_pause_during_restart_backoff" / "exporter.log").read_text()
    assert "Awaiting end of restart backoff period" in log
