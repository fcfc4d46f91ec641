"""Undeliverable records (not UTF-8, oversize) arrive while the buffer, which also carries the
dead-letter stream, is down: they must still end up dead-lettered with their reason once it is
back, and every legal record delivered."""

from harness.model.profiles import HOSTILE_BAD_SHARE
from harness.scenario import Expect, LinkDown, Scenario, Step, Workload

RECORDS = 400
LIMIT = 2000

SCENARIO = Scenario(
    name="malformed_rows_dead_letter_path_down",
    description="Invalid and oversize rows written while the Redis link (buffer and dead letters) is down",
    incident="export-lost-to-disk-and-encoding",
    workload=Workload(records=RECORDS, profile="hostile", size=LIMIT, chunk=40, before_fraction=0.1),
    steps=(Step("during", LinkDown("redis"), at=0.2, duration=3.0),),
    expect=Expect(dead_lettered_at_least=int(RECORDS * HOSTILE_BAD_SHARE)),
    catches=("lossy_encoding",),
    knobs={"max_record_bytes": str(LIMIT)},
    during_s=4.0,
)
