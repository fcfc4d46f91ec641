"""Putting a protocol proxy on a server's link for a run (harness.infra.proxies), for the step
kinds that answer single requests: before the exporter starts, Toxiproxy's upstream for that
link is pointed at a proxy in the harness's process (so no connection of the exporter is cut by
the move), and at cleanup it is pointed back, unless something else re-pointed it meanwhile (a
server moved to new ports)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.proxies.base import ProtocolProxy, Rule, Trigger
from harness.report.journal import FaultReach
from harness.steps.base import STRICT, Fraction, StepKind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

SAMPLES_KEPT = 20  # injections written into a step's result

ProxyFactory = Callable[[tuple[str, int], Callable[[], float]], ProtocolProxy]


def ensure_proxy(run: StepContext, server: str, make: ProxyFactory) -> ProtocolProxy:
    """The run's proxy on ``server``'s link, started and put on the link the first time."""
    if server in run.proxies:
        return run.proxies[server]
    link = run.stack.proxy(server)
    original = link.upstream
    host, _, port = original.rpartition(":")
    proxy = make((host, int(port)), run.now).start()

    def put_back() -> None:
        try:
            if run.stack.proxy(server).upstream == proxy.address:
                link.set_upstream(original)
        finally:
            proxy.close()

    run.closers.append(put_back)
    link.set_upstream(proxy.address)
    run.proxies[server] = proxy
    return proxy


def proxy_of(run: StepContext, server: str, step: str) -> ProtocolProxy:
    try:
        return run.proxies[server]
    except KeyError:
        raise HarnessError(f"scenario {run.scenario.name}: {step} has no {server} protocol proxy "
                           "(it is put on the link before the exporter starts, by the step's prepare)") from None


def take_off(run: StepContext, server: str, number: int, rule: Rule, record: StepRecord) -> None:
    """Take a step's rule off the proxy, and write what it met into the step's record and the
    run's observations (a fault that met no request is seen by the ``protocol_faults_met`` check)."""
    proxy = proxy_of(run, server, record.description)
    proxy.remove_rule(number)
    made = proxy.injections(number)
    trigger = rule.trigger
    record.evidence += f"; answered {trigger.fired} of {trigger.matched} matching request(s)"
    violations = list(proxy.violations)
    if violations:
        record.evidence += (f"; the proxy closed {len(violations)} connection(s) on bytes it could not read as "
                            f"{proxy.protocol}, first: {violations[0]}")
    record.result = {"matched": trigger.matched, "injected": trigger.fired,
                     "injections": [{"at": i.at, "connection": i.connection, "request": i.request,
                                     "answer": i.answer} for i in made[:SAMPLES_KEPT]],
                     "protocol_violations": violations[:SAMPLES_KEPT]}
    run.observed.reaches.append(FaultReach(record.description, server, trigger.matched, trigger.fired,
                                           server in run.target.uses))


@dataclass(frozen=True, config=STRICT)
class TriggeredFault(StepKind):
    """What every fault answered through a protocol proxy shares: its trigger's parameters (from
    the ``nth`` matching request on, ``times`` times, 0: every one while in force, each with
    ``probability`` drawn from ``seed``), how a report says them, and how shrink softens them.
    Not registered itself; a kind subclasses it with ``kw_only=True``."""

    proxy_server: ClassVar[str] = ""  # the server whose protocol proxy answers (a file fault has none)
    nth: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    times: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    probability: Fraction = 1.0
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 1

    def trigger(self) -> Trigger:
        return Trigger(self.nth, self.times, self.probability, self.seed)

    def how_often(self) -> str:
        how = "every time" if self.times == 0 else f"{self.times} time(s)"
        chance = f" with probability {self.probability:g}" if self.probability < 1 else ""
        return f"from the {self.nth}. on, {how}{chance}"

    def simpler(self) -> list[StepKind]:
        gentler: list[StepKind] = []
        if self.times != 1:
            gentler.append(dataclasses.replace(self, times=1))
        if self.probability < 1:
            gentler.append(dataclasses.replace(self, probability=1.0))
        return gentler

    def harsher(self) -> list[StepKind]:
        """Every matching request while in force, from the first, with certainty: each alone, so
        amplify keeps only what raises the rate."""
        stronger: list[StepKind] = []
        if self.times != 0:
            stronger.append(dataclasses.replace(self, times=0))
        if self.nth != 1:
            stronger.append(dataclasses.replace(self, nth=1))
        if self.probability < 1:
            stronger.append(dataclasses.replace(self, probability=1.0))
        return stronger

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        """Take the rule ``put_on`` added off its proxy, writing what it met into the record."""
        number, rule = handle
        take_off(run, self.proxy_server, number, rule, record)

    def put_on(self, run: StepContext, server: str, rule: Rule, record: StepRecord) -> Any:
        """Add the rule to the server's proxy; the handle ``take_off`` needs."""
        proxy = proxy_of(run, server, self.describe())
        number = proxy.add_rule(rule)
        record.evidence = f"rule {number} on the {server} proxy ({proxy.address}): {rule.describe()}"
        return number, rule
