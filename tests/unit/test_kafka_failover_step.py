"""kafka_leader_lost and kafka_isr_shrunk without servers: what they need and hold, the order in
which they act on the cluster and the evidence they write, losses attributed to a failover's
span, and the producer settings the bundled exporter takes from its knobs."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.backends.docker import DockerBackend
from harness.backends.local import LocalBackend
from harness.catalogue import incident
from harness.cli.up import topology_ok
from harness.judge.anomalies import FAILOVER_LEAD_S, losses_by_failover
from harness.model.capabilities import Need
from harness.model.knobs import knob_problem
from harness.report.findings import FailoverLoss
from harness.report.html_report import _failover_section
from harness.report.journal import StepRecord
from harness.scenario import KafkaIsrShrunk, KafkaLeaderLost, LinkDown, Scenario, ScenarioError, Step, Workload
from harness.steps import World, kafka_failover


class ClusterBackend:
    """Records what a step asks of the cluster; the partition's state moves as a cluster's would."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.calls: list[str] = []
        self.state = state
        self.shrinks = True  # a cut leader drops its followers from the ISR (at once, here)

    def kill_broker(self, node: int) -> None:
        self.calls.append(f"kill {node}")
        self.state.update(leader=3, isr=[1, 3])

    def start_broker(self, node: int) -> None:
        self.calls.append(f"start {node}")
        self.state.update(isr=[1, 2, 3])

    def cut_broker_replication(self, node: int, cut: bool) -> None:
        self.calls.append(f"{'cut' if cut else 'uncut'} {node}")
        self.state.update(isr=[node] if cut and self.shrinks else [1, 2, 3])


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ClusterBackend]:
    state: dict[str, Any] = {"leader": 2, "replicas": [2, 3, 1], "isr": [1, 2, 3]}
    backend = ClusterBackend(state)
    monkeypatch.setattr(kafka_failover, "partition_state", lambda run, client=None: dict(state))
    monkeypatch.setattr(kafka_failover, "high_watermark", lambda run: 1700)
    monkeypatch.setattr(kafka_failover, "admin", lambda run: object())  # kept by the waits, read by the fake only
    run = SimpleNamespace(stack=SimpleNamespace(backend=backend))
    return run, backend


def test_they_need_a_kafka_cluster_which_only_the_local_backend_runs() -> None:
    for step in (KafkaLeaderLost(), KafkaIsrShrunk()):
        assert step.needs() == {Need.replica("kafka"), Need.link("kafka")}
        assert LocalBackend().unsupported(step) is None
        assert "runs no replica of kafka" in (DockerBackend().unsupported(step) or "")


def test_the_leader_is_cut_then_killed_then_back_and_the_evidence_says_so(cluster: tuple[Any, ClusterBackend]) -> None:
    run, backend = cluster
    step, record = KafkaLeaderLost(lag="cut"), StepRecord("during", "leader lost")
    handle = step.apply(run, record)
    assert backend.calls == ["cut 2"] and "its followers' replication link cut" in record.evidence
    step.remove(run, handle, record)
    assert backend.calls == ["cut 2", "kill 2", "uncut 2", "start 2"]
    assert record.result is not None
    assert (record.result["old_leader"], record.result["new_leader"]) == (2, 3)
    assert record.result["isr_at_election"] == [1, 3] and record.result["high_watermark_before"] == 1700
    assert "broker 3 elected" in record.evidence and "back and in sync" in record.evidence


def test_a_leader_lost_in_sync_is_not_cut_first(cluster: tuple[Any, ClusterBackend]) -> None:
    run, backend = cluster
    record = StepRecord("during", "leader lost")
    KafkaLeaderLost(lag="none").apply(run, record)
    assert backend.calls == [] and "cut" not in record.evidence


def test_an_offline_partition_is_evidence_not_an_error(cluster: tuple[Any, ClusterBackend],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run, backend = cluster
    monkeypatch.setattr(kafka_failover, "ELECTION_TIMEOUT_S", 0.3)
    backend.kill_broker = lambda node: backend.state.update(leader=-1, isr=[2])  # type: ignore[method-assign]
    record = StepRecord("during", "leader lost")
    KafkaLeaderLost(lag="cut", unclean=False).remove(run, None, record)
    assert record.result is not None and record.result["new_leader"] == -1


def test_the_isr_shrink_reads_the_shrunk_isr_before_it_heals(cluster: tuple[Any, ClusterBackend]) -> None:
    run, backend = cluster
    step, record = KafkaIsrShrunk(min_insync=2), StepRecord("during", "isr")
    step.apply(run, record)
    assert backend.calls == ["cut 2"] and record.evidence.startswith("followers of broker 2 cut; ISR")
    step.remove(run, None, record)
    assert backend.calls == ["cut 2", "uncut 2"]
    assert record.result == {"isr_at_end": [2], "isr_whole_again": True}


def test_they_are_drawn_within_their_ranges_and_round_trip(tmp_path: Path) -> None:
    rng = random.Random(3)
    drawn = [KafkaLeaderLost.draw(rng, World()) for _ in range(60)]
    assert {d.lag for d in drawn} == {"cut", "none"} and {d.unclean for d in drawn} == {True, False}
    assert {KafkaIsrShrunk.draw(rng, World(during_s=4.0)).min_insync for _ in range(30)} == {2, 3}
    step = Step("during", KafkaLeaderLost(unclean=True, min_insync=1), at=0.5, duration=2.0)
    one = Scenario(name="k", description="d", workload=Workload(records=10), steps=(step,)).validate()
    assert incident.load(incident.write(one, tmp_path / "k.toml")) == one
    with pytest.raises(Exception, match="min_insync"):
        KafkaLeaderLost(min_insync=4)


def test_a_kafka_link_fault_beside_a_kafka_failover_is_refused() -> None:
    steps = (Step("during", KafkaLeaderLost(), at=0.5, duration=2.0), Step("during", LinkDown("kafka"), at=1.0,
                                                                          duration=1.0))
    with pytest.raises(ScenarioError, match="overlaps step 1"):
        Scenario(name="k", description="d", workload=Workload(records=10), steps=steps).validate()


def test_lost_records_in_a_failovers_span_are_attributed_to_it() -> None:
    failover = StepRecord("during", "leader lost", applied_at=10.0, removed_at=14.0, evidence="hw 1700",
                          fails_over="kafka")
    other = StepRecord("during", "link down", applied_at=1.0, removed_at=2.0)
    written = {1: 3.0, 2: 10.0 - FAILOVER_LEAD_S + 0.1, 3: 12.0, 4: 14.5}
    [loss] = losses_by_failover([4, 3, 2, 1], [other, failover], written.get)
    assert (loss.server, loss.lost, loss.lost_total, loss.first_ids) == ("kafka", 2, 4, [2, 3])
    assert loss.evidence == "hw 1700"
    assert losses_by_failover([], [failover], written.get)[0].lost == 0
    html = "".join(_failover_section([loss]))
    assert "2 of 4" in html and "hw 1700" in html and "t=10.0s..t=14.0s" in html


def test_the_failover_section_is_absent_without_a_failover() -> None:
    assert _failover_section([]) == []
    assert _failover_section([FailoverLoss("s", "redis", None, None, 0, 0)])[0].count("<tr>") == 2


def test_producer_knobs_take_only_what_the_producer_takes() -> None:
    assert knob_problem("producer_acks", "all") is None and knob_problem("producer_acks", "1") is None
    assert knob_problem("producer_acks", "0") is not None
    assert knob_problem("producer_idempotence", "yes") is not None


def test_up_check_fails_on_a_node_down_or_a_proxy_disabled() -> None:
    good = {"nodes": {"kafka-2": {"running": True, "registered": True}, "redis-replica": {"running": True,
                                                                                          "link": "up"}},
            "proxies": {"kafka-replication-2": {"enabled": True}}}
    assert topology_ok(good) and topology_ok(None)
    assert not topology_ok({**good, "nodes": {"kafka-2": {"running": True, "registered": False}}})
    assert not topology_ok({**good, "nodes": {"r": {"running": True, "link": "down"}}})
    assert not topology_ok({**good, "proxies": {"p": {"enabled": False}}})


def test_the_timeline_samples_what_failover_steps_watch_and_the_report_draws_it() -> None:
    from harness.report.html_report import _scenario_section
    from harness.report.result import ScenarioResult
    from harness.rig.timeline import Sampler

    def broken() -> dict[str, float]:
        raise ConnectionError("the watched broker is the one that died")

    stack = SimpleNamespace(redis_url=lambda proxied: "redis://:x@127.0.0.1:9/0")
    sampler = Sampler(stack, "buffer", lambda: (0.0, 0.0), 0.0,  # type: ignore[arg-type]
                      watches=[lambda: {"kafka partition leader": 2.0}, broken])
    sampler._watch(0.5)
    sampler._watch(1.0)
    sampler.client.close()
    assert sampler.timeline.topology == {"kafka partition leader": [(0.5, 2.0), (1.0, 2.0)]}
    series = sampler.timeline.to_series({}, {})
    assert series.topology == sampler.timeline.topology
    result = ScenarioResult("k", "d", None, series=series)
    assert "kafka partition leader" in _scenario_section(result)
