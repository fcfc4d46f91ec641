"""Rows no sink can take (not UTF-8, oversize) among legal oddities (NUL bytes, emoji, mixed scripts)."""

from harness.model.profiles import HOSTILE_BAD_SHARE
from harness.scenario import Expect, Scenario, Workload

RECORDS = 500
LIMIT = 2000

SCENARIO = Scenario(
    name="malformed_rows",
    description="Invalid UTF-8 and oversize rows dead-lettered with reasons; NUL bytes, emoji, scripts intact",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=RECORDS, profile="hostile", size=LIMIT),
    expect=Expect(dead_lettered_at_least=int(RECORDS * HOSTILE_BAD_SHARE)),
    catches=("lossy_encoding",),
    knobs={"max_record_bytes": str(LIMIT)},
    during_s=1.0,
)
