"""The external backend, pointed at servers Faultline did not start (here: the session's local
servers, reached at their direct addresses, standing in for a staging environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.external import ExternalBackend, ExternalBackendError, ExternalConfig
from harness.cli.pytest_plugin import assert_scenario_passed
from harness.infra.stack import Stack
from harness.model.target import TargetDefinition
from harness.play.runner import ScenarioRunner
from harness.scenario import Expect, LinkDown, RestartService, Scenario, Step, Toxic, Workload

pytestmark = pytest.mark.faultline


@pytest.fixture
def external_config(stack: Stack, tmp_path: Path) -> Path:
    path = tmp_path / "staging.toml"
    path.write_text(f'postgres_dsn = "{stack.postgres_dsn(proxied=False)}"\n'
                    f'redis_url = "{stack.redis_url(proxied=False)}"\n'
                    f'kafka_bootstrap = "{stack.kafka_bootstrap(proxied=False)}"\n')
    return path


@pytest.fixture
def external(external_config: Path) -> Stack:
    backend = ExternalBackend(ExternalConfig.load(str(external_config)))
    try:
        yield backend.start()
    finally:
        backend.stop()


def run(stack: Stack, scenario: Scenario, tmp_path: Path):  # noqa: ANN201
    return ScenarioRunner(stack, TargetDefinition.load(), scenario, tmp_path).run()


@pytest.mark.timeout(120)
def test_faults_on_redis_and_postgres_reach_the_external_servers_through_new_proxies(
        external: Stack, stack: Stack, tmp_path: Path) -> None:
    assert external.redis.direct == stack.redis.direct  # the same servers ...
    assert external.redis.proxied != stack.redis.proxied  # ... behind Faultline's own proxies
    scenario = Scenario(name="external_links", description="Redis down, Postgres slow, on the external servers",
                        workload=Workload(records=300),
                        steps=(Step("during", LinkDown("redis"), at=0.5, duration=2.0),
                               Step("during", Toxic("postgres", "latency", attributes={"latency": 100}), at=3.0,
                                    duration=2.0)),
                        expect=Expect(errors_surfaced=True), during_s=5.0)
    result = run(external, scenario, tmp_path)
    assert_scenario_passed(result)
    assert result.ledger.counts["delivered_intact"] == 300


@pytest.mark.timeout(60)
def test_kafka_bypassing_the_proxy_is_detected_and_its_faults_are_skipped_not_passed(
        external: Stack, tmp_path: Path) -> None:
    backend = external.backend
    assert isinstance(backend, ExternalBackend)
    assert "advertises" in backend.bypassed["kafka"]
    scenario = Scenario(name="external_kafka", description="Kafka down",
                        steps=(Step("during", LinkDown("kafka"), at=0.5, duration=2.0),))
    result = run(external, scenario, tmp_path)
    assert result.verdict == "skipped"
    assert result.skipped and "advertised listener" in result.skipped
    assert str(external.kafka.proxied.port) in result.skipped


@pytest.mark.timeout(60)
def test_process_faults_on_servers_it_does_not_own_are_skipped_with_the_reason(
        external: Stack, tmp_path: Path) -> None:
    scenario = Scenario(name="external_restart", description="restart Redis",
                        steps=(Step("during", RestartService("redis"), at=0.5, duration=1.0),))
    result = run(external, scenario, tmp_path)
    assert result.verdict == "skipped" and result.skipped and "does not own" in result.skipped
    assert result.error is None  # a skip is not a harness error


def test_missing_or_incomplete_configuration_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("FAULTLINE_EXTERNAL", raising=False)
    with pytest.raises(ExternalBackendError, match="FAULTLINE_EXTERNAL"):
        ExternalConfig.load()
    partial = tmp_path / "partial.toml"
    partial.write_text('postgres_dsn = "postgresql://u:p@127.0.0.1:1/db"\nkafak_bootstrap = "x"\n')
    with pytest.raises(ExternalBackendError, match=r"partial.toml:2: redis_url: Field required; kafka_bootstrap: "
                                                   r"Field required; kafak_bootstrap: Extra inputs"):
        ExternalConfig.load(str(partial))
    port = tmp_path / "port.toml"
    port.write_text('postgres_dsn = "postgresql://u@127.0.0.1:abc/db"\nredis_url = "redis://127.0.0.1:1"\n'
                    'kafka_bootstrap = "127.0.0.1:2"\n')
    with pytest.raises(ExternalBackendError, match=r"port.toml:1: postgres_dsn: cannot read a port"):
        ExternalConfig.load(str(port))


@pytest.mark.timeout(180)
def test_gate_on_the_external_backend_runs_what_it_can_and_skips_the_rest(external_config: Path,
                                                                          tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "baseline", "redis_restart_kept",
                           "--backend", "external", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=170, env={**os.environ, "FAULTLINE_EXTERNAL": str(external_config)}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    verdicts = {s["name"]: s["verdict"] for s in report["scenarios"]}
    assert verdicts == {"baseline": "pass", "redis_restart_kept": "skipped"}
