"""Load from Locust (source writers and job-API users) while the links suffer: nothing written
under load may be lost, and the API keeps answering. Every row a Locust user writes is in the
ledger, so the loss check covers load traffic as it covers the harness's own writes."""

from harness.scenario import Expect, LinkDown, Load, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="locust_load_under_faults",
    description="Locust writers and API users for 10 s under Redis latency, then Kafka down: nothing lost",
    incident="send-errors-swallowed",
    workload=Workload(records=200, profile="mixed", chunk=50),
    steps=(
        Step("during", Load("source", users=4, wait_s=0.05, rows_per_write=5), at=0.0, duration=10.0),
        Step("during", Load("api", users=4, wait_s=0.1, rows_per_write=20), at=0.0, duration=10.0),
        Step("during", Toxic("redis", "latency", attributes={"latency": 150, "jitter": 50}), at=1.0, duration=4.0),
        Step("during", LinkDown("kafka"), at=5.5, duration=3.0),
    ),
    expect=Expect(),
    # Short delivery timeout: failed sends come back inside the fault window.
    knobs={"delivery_timeout_ms": "1500"},
    catches=("ack_before_send",),
    during_s=10.0,
)
