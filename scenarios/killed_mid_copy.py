"""Killed in the middle of a COPY: thousands of rows of one transaction share one commit (and, for a
change-data-capture connector, one WAL position). A resume that keys its position on the commit
alone skips what it had not sent when it died (debezium/dbz#1554, see ../shared/INCIDENTS.md:
"resume skips records"). After the restart every row must arrive; duplicates are at-least-once."""

from harness.scenario import Expect, KillExporter, Scenario, Step, Workload

SCENARIO = Scenario(
    name="killed_mid_copy",
    description="Rows written by COPY, 500 to a transaction; the exporter SIGKILLed mid-stream and restarted: "
                "nothing skipped",
    workload=Workload(records=4000, profile="ascii", chunk=500, write="copy", meet_faults=500),
    steps=(Step("during", KillExporter(), at=1.0, duration=1.5),),
    expect=Expect(),
    during_s=4.0,
)
