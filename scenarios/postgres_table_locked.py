"""A migration takes ACCESS EXCLUSIVE on the source table for 4s: the exporter's reads wait (or
time out and are retried) and go on from their checkpoint; nothing skipped, nothing lost. Writes
are blocked too (the harness's fail after a bounded wait and count as not written), so a burst
is written just before the lock to be in flight when it comes. Found the exporter leaving a
session waiting on the lock per timed-out read until connections ran out."""

from harness.scenario import Expect, PostgresLockTable, Scenario, Step, Workload, Write

SCENARIO = Scenario(
    name="postgres_table_locked",
    description="ACCESS EXCLUSIVE lock on the source table for 4s: reads wait or retry, nothing skipped",
    incident="timeouts-too-tight",
    workload=Workload(records=400, chunk=50),
    steps=(Step("during", Write(1000), at=0.5),
           Step("during", PostgresLockTable("ACCESS EXCLUSIVE"), at=0.5, duration=4.0)),
    expect=Expect(),
    knobs={"source_timeout_s": "2"},
    during_s=6.0,
)
