"""Redis answering one command at a time: an error reply (OOM, READONLY, LOADING, BUSY, ...) or a
reply cut half-way, for the commands a rule names, through the RESP proxy on the Redis link
(harness.infra.proxies.resp). Everything else on the connection passes untouched, so an exporter
is tested on *which* error it got for *which* command: XADD refused while XACK goes through, the
EXEC of one MULTI refused, a checkpoint read refused once."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.infra.proxies.resp import CommandRule, RespProxy
from harness.model.capabilities import Need
from harness.steps.base import STRICT, World
from harness.steps.protocol import TriggeredFault, ensure_proxy
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

RedisAnswer = Literal["OOM", "READONLY", "LOADING", "BUSY", "NOREPLICAS", "MISCONF", "TRYAGAIN", "cut"]
# Commands explore draws from: a buffer's writes, reads, acknowledgements, transactions and
# checkpoint (a black-box target may use others; a scenario names any command).
DRAWN_COMMANDS = ("XADD", "XACK", "XDEL", "XREADGROUP", "XAUTOCLAIM", "XLEN", "GET", "SET", "EXEC")


@step_kind
@dataclass(frozen=True, config=STRICT, kw_only=True)
class RedisCommandError(TriggeredFault):
    """Redis answers ``command`` with ``answer`` (an error reply, or ``cut``: its real reply cut
    half-way and the connection closed): from the ``nth`` matching command on, ``times`` times (0:
    every one while in force), each with ``probability`` (seeded by ``seed``). Inside a MULTI
    only when ``inside_multi``: the queued command is refused and the EXEC answers EXECABORT."""

    kind_name: ClassVar[str] = "redis_command_error"
    proxy_server: ClassVar[str] = "redis"
    command: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,31}$")]
    answer: RedisAnswer = "OOM"
    inside_multi: bool = False

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> RedisCommandError:
        answer: RedisAnswer = rng.choice(("OOM", "READONLY", "LOADING", "BUSY", "NOREPLICAS", "MISCONF", "cut"))
        # Among the commands the target says it sends: one it never sends would meet nothing.
        return cls(command=rng.choice(world.redis_commands or DRAWN_COMMANDS), answer=answer,
                   nth=rng.choice((1, 1, 2, 5)), times=rng.choice((1, 3, 0)), probability=rng.choice((1.0, 1.0, 0.5)),
                   inside_multi=rng.random() < 0.5, seed=rng.randrange(1, 1_000_000))

    def describe(self) -> str:
        multi = ", inside MULTI too" if self.inside_multi else ""
        return f"redis answers {self.command} with {self.answer} {self.how_often()}{multi}"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.protocol("redis")})

    def prepare(self, run: StepContext) -> None:
        ensure_proxy(run, "redis", lambda upstream, clock: RespProxy(upstream, clock))

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        return self.put_on(run, "redis", CommandRule(self.command, self.answer, self.inside_multi, self.trigger()),
                           record)
