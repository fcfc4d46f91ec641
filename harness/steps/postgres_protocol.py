"""Postgres answering one statement at a time, through the protocol proxy on the Postgres link
(harness.infra.proxies.pgwire): a chosen SQLSTATE raised by the server itself for the statements
whose SQL matches (serialization failure, deadlock, statement or lock timeout, disk full, out of
memory, I/O error), a result cut after some rows, or a login refused. The rest of the connection
passes untouched: the exporter is tested on what it does with *that* error on *that* statement."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import psycopg
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.proxies.pgwire import CUT, RAISE_SETUP, LoginRule, PgWireProxy, StatementRule
from harness.model.capabilities import Need
from harness.steps.base import STRICT, Problem, World
from harness.steps.protocol import TriggeredFault, ensure_proxy
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

StatementAnswer = Literal["40001", "40P01", "57014", "55P03", "53100", "53200", "58030", "cut"]
LoginAnswer = Literal["53300", "57P03", "28P01"]
SOURCE_TABLE = "{source_table}"


def _prepare(run: StepContext) -> None:
    """The proxy on the Postgres link, and the function that raises a chosen SQLSTATE."""
    try:
        with psycopg.connect(run.stack.admin_url("postgres"), autocommit=True, connect_timeout=5) as conn:
            for statement in RAISE_SETUP:
                conn.execute(statement)
    except psycopg.Error as exc:
        raise HarnessError(f"scenario {run.scenario.name}: postgres: cannot create the function the protocol "
                           f"proxy raises errors with: {exc.__class__.__name__}: {exc}") from exc
    ensure_proxy(run, "postgres", lambda upstream, clock: PgWireProxy(upstream, clock))


@step_kind
@dataclass(frozen=True, config=STRICT, kw_only=True)
class PostgresStatementError(TriggeredFault):
    """Statements whose SQL contains ``statement`` (``{source_table}``: the run's source table)
    are answered with ``answer``, a SQLSTATE the server raises, or ``cut`` (the connection closes
    after ``after_rows`` rows of the result): from the ``nth`` match on, ``times`` times (0:
    every one while in force), each with ``probability`` (seeded by ``seed``)."""

    kind_name: ClassVar[str] = "postgres_statement_error"
    proxy_server: ClassVar[str] = "postgres"
    answer: StatementAnswer = "40001"
    statement: Annotated[str, Field(min_length=1, max_length=200)] = SOURCE_TABLE
    after_rows: Annotated[int, Field(ge=0, le=1_000_000)] = 0

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresStatementError:
        answer: StatementAnswer = rng.choice(("40001", "40P01", "57014", "55P03", "53100", "53200", "58030", "cut"))
        return cls(answer=answer, after_rows=rng.choice((0, 1, 50)) if answer == CUT else 0,
                   nth=rng.choice((1, 1, 2, 5)), times=rng.choice((1, 3, 0)), probability=rng.choice((1.0, 1.0, 0.5)),
                   seed=rng.randrange(1, 1_000_000))

    def describe(self) -> str:
        what = f"cut after {self.after_rows} row(s)" if self.answer == CUT else f"SQLSTATE {self.answer}"
        return f"postgres answers statements on {self.statement} with {what} {self.how_often()}"

    def check(self) -> Problem | None:
        if self.after_rows and self.answer != CUT:
            return Problem("after_rows", "after_rows is for answer = \"cut\"")
        return None

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.protocol("postgres"), Need.admin("postgres")})

    def prepare(self, run: StepContext) -> None:
        _prepare(run)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        pattern = self.statement.replace(SOURCE_TABLE, run.ctx.source_table)
        rule = StatementRule(pattern, self.answer, self.after_rows, self.trigger())
        return self.put_on(run, "postgres", rule, record)



@step_kind
@dataclass(frozen=True, config=STRICT, kw_only=True)
class PostgresLoginRefused(TriggeredFault):
    """Logins through the link are refused with ``sqlstate`` (FATAL, as the server says it): too
    many clients, starting up, or a password refused; by the same trigger as a statement error."""

    kind_name: ClassVar[str] = "postgres_login_refused"
    proxy_server: ClassVar[str] = "postgres"
    sqlstate: LoginAnswer = "53300"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> PostgresLoginRefused:
        sqlstate: LoginAnswer = rng.choice(("53300", "57P03", "28P01"))
        return cls(sqlstate=sqlstate, times=rng.choice((1, 3, 0)), seed=rng.randrange(1, 1_000_000))

    def describe(self) -> str:
        return f"postgres refuses logins with SQLSTATE {self.sqlstate} {self.how_often()}"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.protocol("postgres"), Need.admin("postgres")})

    def prepare(self, run: StepContext) -> None:
        _prepare(run)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        return self.put_on(run, "postgres", LoginRule(self.sqlstate, self.trigger()), record)
