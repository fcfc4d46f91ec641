"""The exporter is SIGKILLed mid-batch twice and frozen past its timeouts once: nothing lost."""

from harness.scenario import Expect, FreezeExporter, KillExporter, Scenario, Step, Workload

SCENARIO = Scenario(
    name="exporter_kill_restart",
    description="Exporter SIGKILLed twice mid-batch and SIGSTOPped for 3 s: at-least-once holds, duplicates bounded",
    workload=Workload(records=3000, profile="ascii", chunk=300),
    steps=(
        Step("during", KillExporter(), at=0.5, duration=0.5),
        Step("during", KillExporter(), at=2.0, duration=0.5),
        Step("during", FreezeExporter(), at=3.5, duration=3.0),
    ),
    expect=Expect(),
    knobs={"batch_size": "200"},
    during_s=7.0,
)
