"""Benchmark figures that reproduce: each bench's rounds, the target they are judged against, the
machine they were measured on (a fingerprint) and how busy it was, written to a file that
README's table is generated from (``faultline bench table``), never typed by hand.

A figure is judged on its worst round (a shared 2-core machine is noisy: a target met by the best
round alone is not met). A missed target says by how much.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil
from pydantic import TypeAdapter, ValidationError

from harness.errors import HarnessError
from harness.inputs import unknown_field

Better = Literal["higher", "lower"]


class BenchFileError(HarnessError):
    """A bench file that cannot be read back (exit 2, naming the file and field)."""


@dataclass(frozen=True)
class Figure:
    name: str  # what is measured, as the table says it
    unit: str
    rounds: tuple[float, ...]  # every round's value, in the order measured
    better: Better = "higher"
    target: float | None = None  # None: measured and shown, not judged (a third party's figure)

    def __post_init__(self) -> None:
        if not self.rounds or not all(math.isfinite(r) for r in self.rounds):
            raise HarnessError(f"figure {self.name!r}: rounds must be finite numbers, at least one: {self.rounds}")

    @property
    def worst(self) -> float:
        return min(self.rounds) if self.better == "higher" else max(self.rounds)

    @property
    def best(self) -> float:
        return max(self.rounds) if self.better == "higher" else min(self.rounds)

    @property
    def met(self) -> bool:
        if self.target is None:
            return True
        return self.worst >= self.target if self.better == "higher" else self.worst <= self.target

    @property
    def missed_by(self) -> float:
        """How far the worst round is from the target, as a fraction of the target (0 when met)."""
        if self.met or self.target is None or self.target == 0:
            return 0.0
        return abs(self.worst - self.target) / abs(self.target)

    def verdict(self) -> str:
        if self.target is None:
            return "measured, no target"
        sign = ">=" if self.better == "higher" else "<="
        if self.met:
            return f"met ({sign} {number(self.target)} {self.unit})"
        return f"MISSED by {self.missed_by:.0%} ({sign} {number(self.target)} {self.unit})"


def number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


@dataclass(frozen=True)
class Machine:
    """What a figure depends on: the CPU, how many of it, memory, kernel and Python."""

    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    python: str

    @property
    def fingerprint(self) -> str:
        text = f"{self.cpu}|{self.cores}|{round(self.memory_gib)}|{self.kernel}|{self.python}"
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def said(self) -> str:
        return f"{self.cores} cores, {self.memory_gib:.0f} GiB, {self.cpu}"


def this_machine() -> Machine:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return Machine(cpu=cpu, cores=os.cpu_count() or 1, memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
                   kernel=platform.release(), python=platform.python_version())


@dataclass(frozen=True)
class Load:
    """How busy the machine was while the bench ran: the load average before and after, and the
    CPU it spent on everything (the bench included) on average."""

    load_before: float
    load_after: float
    cpu_percent: float


@dataclass(frozen=True)
class BenchFile:
    benchmark: str
    at: str  # ISO time, UTC
    machine: Machine
    fingerprint: str
    load: Load
    seconds: float
    figures: tuple[Figure, ...]
    details: dict[str, object] = field(default_factory=dict)  # the bench's own figures, as it gave them
    schema: Literal[1] = 1

    @property
    def met(self) -> bool:
        return all(f.met for f in self.figures)

    @property
    def day(self) -> str:
        return self.at[:10]


_FILE: TypeAdapter[BenchFile] = TypeAdapter(BenchFile)


def dumps(found: BenchFile) -> str:
    return _FILE.dump_json(found, indent=2).decode() + "\n"


def read_bench_file(path: Path) -> BenchFile:
    try:
        text = path.read_bytes()
        found = _FILE.validate_json(text, strict=False)
    except OSError as exc:
        raise BenchFileError(f"{path}: cannot be read: {exc}") from exc
    except HarnessError as exc:
        raise BenchFileError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise BenchFileError(f"{path}:{where}: {first['msg']}") from exc
    stray = unknown_field(json.loads(text), _FILE.dump_python(found, mode="json"))
    if stray is not None:
        raise BenchFileError(f"{path}:{stray}: not a field of a bench file")
    return found
