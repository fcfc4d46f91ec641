"""The buffer link cuts every append short: the source checkpoint must not move past it."""

from harness.scenario import Expect, Scenario, Step, Toxic, Workload

SCENARIO = Scenario(
    name="redis_append_cut",
    description="Redis link closes after 3 KB per connection: appends fail, the checkpoint holds, nothing lost",
    workload=Workload(records=500, profile="ascii", size=120, chunk=50),
    steps=(Step("during", Toxic("redis", "limit_data", stream="upstream", attributes={"bytes": 3000}),
                at=0.0, duration=4.0),),
    expect=Expect(errors_surfaced=True),
    catches=("checkpoint_before_buffer",),
    knobs={"batch_size": "100"},
    during_s=5.0,
)
