"""The exporter's wall clock jumps (an NTP step, a VM resumed, a leap handled badly), while its
monotonic clock and the harness's own clocks run on untouched: a wall-clock shim
(harness.provision.wallclock: why not libfaketime) is preloaded into the exporter's process (and
the workers it starts) before it starts, reading its offset from a file the step rewrites;
``+0`` when no jump is in force. Grace periods, timeouts and backoffs built on
the wall clock show themselves: a pause that waits for a deadline an hour away, a job that ends
before it began."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.model.capabilities import Need
from harness.provision.components import require
from harness.provision.wallclock import OFFSET_ENV
from harness.steps.base import STRICT, Problem, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

# The shim re-reads the offset file at most every 200 ms: the jump is seen within this.
CACHE_S = 1
NO_JUMP = "+0"
DAY_S = 86_400


def offset_file(run: StepContext) -> Path:
    return run.ctx.workdir / "wallclock-offset"


def _write_offset(path: Path, offset: str) -> None:
    """Rewrite the offset at once (a reader never sees half a file)."""
    partial = path.with_suffix(".partial")
    partial.write_text(offset + "\n")
    os.replace(partial, path)


def preload_shim(run: StepContext) -> None:
    """Before the exporter starts: the shim in its LD_PRELOAD, reading an offset of +0."""
    library = require("wallclock").path
    path = offset_file(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_offset(path, NO_JUMP)
    preloaded = run.env.get("LD_PRELOAD", "").split()
    run.env.update({"LD_PRELOAD": " ".join(preloaded + [library] if library not in preloaded else preloaded),
                    OFFSET_ENV: str(path)})


@dataclass(frozen=True, config=STRICT)
class WallClockFault(StepKind):
    """What a fault of the exporter's wall clock shares (not registered itself): the shim
    preloaded before the exporter starts, the offset file written at ``apply`` and set back to
    the real time at ``remove``, a deadline taken before it met after it."""

    meets_waits: ClassVar[bool] = True  # a deadline taken before the step, waited for after it
    invites: ClassVar[tuple[str, ...]] = ("pause",)  # a pause's grace is such a deadline

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.preload("wallclock")})

    def extra_drain_s(self) -> float:
        return float(CACHE_S)

    def prepare(self, run: StepContext) -> None:
        preload_shim(run)

    def written(self, run: StepContext, text: str) -> Path:
        path = offset_file(run)
        _write_offset(path, text)
        return path

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        path = self.written(run, NO_JUMP)
        record.evidence += f"; back to {path.read_text().strip()} (the real time)"


@step_kind
@dataclass(frozen=True, config=STRICT)
class ClockJump(WallClockFault):
    """The exporter's wall clock jumps by ``seconds`` (negative: back) for the step's window, then
    comes back; its monotonic clock does not move."""

    kind_name: ClassVar[str] = "clock_jump"
    seconds: Annotated[int, Field(ge=-DAY_S, le=DAY_S)]

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> ClockJump:
        return cls(seconds=rng.choice((-3600, -30, 30, 3600, -DAY_S)))

    def describe(self) -> str:
        way = "back" if self.seconds < 0 else "forward"
        return f"exporter's wall clock jumps {way} {abs(self.seconds)}s"

    def check(self) -> Problem | None:
        return Problem("seconds", "a jump of 0 s is no jump") if self.seconds == 0 else None

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        path = self.written(run, f"{self.seconds:+d}")
        record.evidence = (f"offset {path.read_text().strip()}s written to {path} at wall {time.time():.1f} "
                           f"(the exporter reads it within {CACHE_S}s)")
        record.result = {"offset_s": self.seconds, "preloaded": run.env.get("LD_PRELOAD", "")}


@step_kind
@dataclass(frozen=True, config=STRICT)
class ClockDrift(WallClockFault):
    """The exporter's wall clock runs at ``rate`` times real time for the step's window (2: fast,
    0.5: slow; a VM's clock source gone bad, NTP slewing hard), then is stepped back to the real
    time; its monotonic clock does not move. Sleeps and waits on relative times last what they
    would; a deadline taken from the wall clock comes early or late by the drift."""

    kind_name: ClassVar[str] = "clock_drift"
    rate: Annotated[float, Field(ge=0.01, le=100.0, allow_inf_nan=False)]

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> ClockDrift:
        return cls(rate=rng.choice((0.1, 0.5, 2.0, 10.0, 50.0)))

    def describe(self) -> str:
        return f"exporter's wall clock runs {self.rate:g}x"

    def check(self) -> Problem | None:
        return Problem("rate", "a rate of 1 is no drift") if self.rate == 1.0 else None

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        path = self.written(run, f"+0 {self.rate!r} {time.monotonic_ns()}")
        record.evidence = (f"rate {self.rate:g} from monotonic {time.monotonic():.3f} written to {path} "
                           f"(the exporter reads it within {CACHE_S}s)")
        record.result = {"rate": self.rate, "preloaded": run.env.get("LD_PRELOAD", "")}
