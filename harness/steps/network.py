"""Faults on the links between the exporter and its servers, through Toxiproxy."""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.stack import LINKS
from harness.infra.toxiproxy import validate_toxic
from harness.model.capabilities import Need
from harness.steps.base import STRICT, Background, Fraction, Name, Problem, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext


def _unknown_link(link: str) -> Problem | None:
    return None if link in LINKS else Problem("link", f"unknown link {link!r}; links are {', '.join(LINKS)}")


@step_kind
@dataclass(frozen=True, config=STRICT)
class Toxic(StepKind):
    """A Toxiproxy toxic (latency, timeout, reset_peer, bandwidth, slicer, limit_data, ...) on a link."""

    kind_name: ClassVar[str] = "toxic"
    link: Name
    type: Name
    stream: Literal["downstream", "upstream"] = "downstream"
    toxicity: Fraction = 1.0
    attributes: dict[str, Annotated[int, Field(ge=0, le=1_000_000_000)]] = field(default_factory=dict)

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> Toxic:
        kind = rng.choice(("latency", "timeout", "reset_peer", "bandwidth", "slicer", "limit_data"))
        attributes = {"latency": {"latency": rng.choice((50, 200, 500)), "jitter": rng.choice((0, 50))},
                      "timeout": {"timeout": rng.choice((0, 500))}, "reset_peer": {"timeout": rng.choice((0, 200))},
                      "bandwidth": {"rate": rng.choice((8, 64))},
                      "slicer": {"average_size": 16, "size_variation": 8, "delay": rng.choice((10, 100))},
                      "limit_data": {"bytes": rng.choice((2000, 20000))}}[kind]
        return cls(rng.choice(world.links), kind, stream=rng.choice(("downstream", "upstream")),
                   toxicity=rng.choice((1.0, 1.0, 0.5)), attributes=attributes)

    def describe(self) -> str:
        attrs = ",".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return f"{self.type}({attrs}) on {self.link} {self.stream}" + (
            f" toxicity={self.toxicity}" if self.toxicity != 1.0 else "")

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.link(self.link)})

    def extra_drain_s(self) -> float:
        return self.attributes.get("latency", 0) / 100  # a slow link slows the drain after it too

    def simpler(self) -> list[StepKind]:
        """The toxic's numbers halved, then at their gentlest: latency, jitter and delays shorter,
        bandwidth and data limits larger, applied to every connection or fewer of them."""
        gentler = {"latency": 0.5, "jitter": 0.5, "delay": 0.5, "timeout": 0.5, "rate": 2, "bytes": 2}
        halved = {k: int(v * gentler.get(k, 1)) for k, v in self.attributes.items()}
        options: list[StepKind] = []
        if halved != self.attributes and all(v >= 1 or k in ("jitter", "timeout") for k, v in halved.items()):
            options.append(dataclasses.replace(self, attributes=halved))
        if self.toxicity > 0.25:
            options.append(dataclasses.replace(self, toxicity=round(self.toxicity / 2, 3)))
        return options

    def harsher(self) -> list[StepKind]:
        """On every connection, then with its numbers doubled (latency, delays longer; bandwidth
        and data limits smaller)."""
        stronger: list[StepKind] = []
        if self.toxicity < 1.0:
            stronger.append(dataclasses.replace(self, toxicity=1.0))
        harder = {"latency": 2.0, "jitter": 2.0, "delay": 2.0, "rate": 0.5, "bytes": 0.5}
        # A 0 stays 0 (no jitter); a timeout is no harsher longer or shorter: it is left.
        doubled = {k: max(1, int(v * harder.get(k, 1))) if v else v for k, v in self.attributes.items()}
        if doubled != self.attributes:
            stronger.append(dataclasses.replace(self, attributes=doubled))
        return stronger

    def check(self) -> Problem | None:
        try:
            validate_toxic(self.type, self.stream, self.toxicity, dict(self.attributes))
        except HarnessError as exc:
            return Problem("attributes", str(exc))
        return _unknown_link(self.link)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        toxic = run.stack.proxy(self.link).add_toxic(self.type, stream=self.stream, toxicity=self.toxicity,
                                                     name=f"{self.type}_{self.stream}_{len(run.result.steps)}",
                                                     **dict(self.attributes))
        record.evidence = f"toxic listed by toxiproxy: {toxic.name} {toxic.attributes}"
        return toxic.name

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        run.stack.proxy(self.link).remove_toxic(handle)


@step_kind
@dataclass(frozen=True, config=STRICT)
class LinkDown(StepKind):
    """The link's proxy refuses and drops every connection until the window ends."""

    kind_name: ClassVar[str] = "link_down"
    link: Name

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> LinkDown:
        return cls(rng.choice(world.links))

    def describe(self) -> str:
        return f"{self.link} link down"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.link(self.link)})

    def holds(self) -> frozenset[str]:
        return frozenset({f"whether link {self.link} is up"})

    def check(self) -> Problem | None:
        return _unknown_link(self.link)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        proxy = run.stack.proxy(self.link)
        proxy.disable()
        record.evidence = f"proxy {self.link} enabled={proxy.enabled}"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        run.stack.proxy(self.link).enable()


@step_kind
@dataclass(frozen=True, config=STRICT)
class LinkFlap(StepKind):
    """The link goes down for ``down_s`` and up for ``up_s``, again and again through the window
    (each outage shorter than a timeout: the exporter must not give up, nor lose what it sent)."""

    kind_name: ClassVar[str] = "link_flap"
    link: Name
    down_s: Annotated[float, Field(gt=0.05, le=3600)] = 0.5
    up_s: Annotated[float, Field(gt=0.05, le=3600)] = 1.0

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> LinkFlap:
        return cls(rng.choice(world.links), down_s=rng.choice((0.2, 0.5, 1.0)), up_s=rng.choice((0.3, 1.0)))

    def describe(self) -> str:
        return f"{self.link} link flapping ({self.down_s}s down, {self.up_s}s up)"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.link(self.link)})

    def holds(self) -> frozenset[str]:
        return frozenset({f"whether link {self.link} is up"})

    def check(self) -> Problem | None:
        return _unknown_link(self.link)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        proxy = run.stack.proxy(self.link)
        outages = [0]

        def flap(stop: threading.Event) -> None:
            while not stop.is_set():
                proxy.disable()
                outages[0] += 1
                stop.wait(self.down_s)
                proxy.enable()
                stop.wait(self.up_s)

        flapping = Background(run, f"flap-{self.link}", flap)
        record.evidence = f"proxy {self.link} flapping"
        return flapping, outages

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        flapping, outages = handle
        flapping.stop()
        run.stack.proxy(self.link).enable()
        enabled = run.stack.proxy(self.link).enabled
        record.evidence = f"proxy {self.link} went down {outages[0]} time(s); enabled={enabled}"
