"""Partial writes and half-closed connections on every link: slicer, limit_data, slow_close."""

from harness.scenario import Expect, Scenario, Step, Toxic, Workload

SLICER = {"average_size": 64, "size_variation": 32, "delay": 50}

SCENARIO = Scenario(
    name="partial_writes_all_links",
    description="Slicer, limit_data and slow_close on Postgres, Redis and Kafka links: nothing lost or corrupted",
    workload=Workload(records=600, profile="mixed", chunk=60),
    steps=(
        *(Step("during", Toxic(link, "slicer", attributes=SLICER), at=0.0, duration=3.0)
          for link in ("postgres", "redis", "kafka")),
        *(Step("during", Toxic(link, "slow_close", attributes={"delay": 300}), at=0.0, duration=6.0)
          for link in ("postgres", "redis", "kafka")),
        Step("during", Toxic("postgres", "limit_data", attributes={"bytes": 20_000}), at=3.0, duration=2.0),
        Step("during", Toxic("redis", "limit_data", stream="upstream", attributes={"bytes": 20_000}), at=3.0,
             duration=2.0),
        Step("during", Toxic("kafka", "limit_data", stream="upstream", attributes={"bytes": 50_000}), at=5.0,
             duration=2.0),
    ),
    expect=Expect(),
    during_s=7.0,
)
