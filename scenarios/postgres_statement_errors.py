"""Postgres refusing single statements while the server is fine: the exporter's reads of the
source table are answered with a serialization failure, then cut after one row (the connection
closes mid-result) while its logins are refused as too many clients, then cancelled every time
for a second. Each is transient: every acknowledged row must still arrive, in order, once."""

from harness.scenario import PostgresLoginRefused, PostgresStatementError, Scenario, Step, Workload

SCENARIO = Scenario(
    name="postgres_statement_errors",
    description="Source reads answered 40001, cut after a row, logins refused 53300, then 57014 every time for 1s",
    incident="fatal-on-transient-timeout",
    workload=Workload(records=400, chunk=25),
    steps=(
        Step("during", PostgresStatementError(answer="40001", times=3), at=0.5, duration=1.5),
        Step("during", PostgresStatementError(answer="cut", after_rows=1, times=2), at=2.2, duration=1.5),
        Step("during", PostgresLoginRefused(sqlstate="53300", times=3), at=2.2, duration=1.5),
        Step("during", PostgresStatementError(answer="57014", times=0), at=4.0, duration=1.0),
    ),
    during_s=6.0,
)
