"""No fault at all: the reference every other scenario is read against."""

from harness.scenario import Expect, Scenario, Workload

SCENARIO = Scenario(
    name="baseline",
    description="Fault-free run: every record delivered intact, counters agree with the sinks",
    workload=Workload(records=400, profile="mixed"),
    expect=Expect(max_duplicates=0),  # no fault, no reason to deliver anything twice
    during_s=1.0,
)
