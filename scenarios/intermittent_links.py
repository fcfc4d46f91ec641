"""Faults that come and go: the Redis link flaps (0.3s down, 0.7s up), and a third of Kafka
connections are reset; no single failure lasts, many happen. Every one must be a retry."""

from harness.scenario import Expect, LinkFlap, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="intermittent_links",
    description="Redis link flapping and 30% of Kafka connections reset for 5s: nothing lost or doubled in count",
    incident="timeouts-too-tight",
    workload=Workload(records=500, chunk=50, meet_faults=50),
    steps=(
        Step("during", LinkFlap("redis", down_s=0.3, up_s=0.7), at=0.5, duration=5.0),
        Step("during", Toxic("kafka", "reset_peer", toxicity=0.3, attributes={"timeout": 200}), at=0.5,
             duration=5.0),
    ),
    expect=Expect(errors_surfaced=True),
    knobs={"delivery_timeout_ms": "1500"},
    during_s=6.0,
)
