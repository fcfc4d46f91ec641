"""pause-grace-never-fires, seen from the data: a pause is honoured when nothing moves, not when
the call answers fast. Rows keep being written while the exporter is paused; from its
acknowledgement to the resume nothing may be read from the source (Postgres's statement counters,
its lag poll aside), appended to the buffer or delivered to the sink (beyond what was in flight),
and everything written meanwhile must arrive after the resume."""

from harness.scenario import Pause, Resume, Scenario, Step, Workload, Write

SCENARIO = Scenario(
    name="pause_honoured_under_writes",
    description="Paused for 4s while rows keep coming: nothing moves until the resume, then everything arrives",
    incident="pause-grace-never-fires",
    workload=Workload(records=400, chunk=25),
    steps=(
        Step("during", Pause(grace_s=2.0), at=0.5),
        Step("during", Write(records=100), at=2.5),
        Step("during", Resume(), at=4.5),
    ),
    catches=("reader_ignores_pause", "reader_reads_while_paused"),
    during_s=6.0,
)
