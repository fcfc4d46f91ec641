"""Resume skips records: the source link is cut again and again while rows flow (every cut meets
a reader that just appended a page), so a cursor that moves before its page is appended shows.
Explore's finding of `read_ahead_cursor_on_source_error` was a single cut that failed 2 of 5
replays; amplified by repeating the cut, it fails every time, and this is what it became."""

from harness.scenario import Expect, LinkDown, Scenario, Step, Workload

SCENARIO = Scenario(
    name="source_cut_while_rows_flow",
    description="Postgres link cut four times for 0.6 s while rows are written every 0.1 s: every row read "
                "before or after a cut reaches the buffer",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=800, chunk=10),
    steps=tuple(Step("during", LinkDown("postgres"), at=0.55 + 1.0 * n, duration=0.6) for n in range(4)),
    expect=Expect(errors_surfaced=True),
    catches=("read_ahead_cursor_on_source_error",),
    during_s=5.0,
)
