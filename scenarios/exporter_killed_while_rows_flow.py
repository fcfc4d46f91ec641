"""Acknowledged before durable, on a crash: the exporter is killed four times while rows are
written every 0.1 s, so each kill meets a page taken from the source and not yet in the buffer.
A checkpoint saved before its page is appended (`checkpoint_saved_while_coalescing`) skips that
page on restart; one kill at a random moment meets such a page only some of the time."""

from harness.scenario import Expect, KillExporter, Scenario, Step, Workload

SCENARIO = Scenario(
    name="exporter_killed_while_rows_flow",
    description="Exporter SIGKILLed four times (restarted after 0.5 s) while rows are written every 0.1 s: "
                "no row the source had is skipped on restart",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=800, chunk=10),
    steps=tuple(Step("during", KillExporter(), at=0.55 + 1.2 * n, duration=0.5) for n in range(4)),
    expect=Expect(),
    catches=("checkpoint_saved_while_coalescing",),
    during_s=5.5,
)
