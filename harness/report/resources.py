"""Resource monitor: the exporter's RSS, open files, threads and connections over a run, and leaks.

A leak is a trend, not a level: the monitor fits a least-squares line to each quantity over one
process lifetime (a kill or restart starts a new segment; counters start again with it), skips
the warm-up, and flags a quantity whose fitted growth over the segment crosses both an absolute
and a relative threshold. Short segments are not judged: too few samples make a slope noise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

QUANTITIES = ("rss_mib", "open_files", "threads", "connections")


@dataclass(frozen=True)
class LeakThreshold:
    absolute: float  # growth over the segment, in the quantity's unit
    relative: float  # growth as a fraction of the fitted starting level


DEFAULT_THRESHOLDS = {
    "rss_mib": LeakThreshold(absolute=64.0, relative=0.5),
    "open_files": LeakThreshold(absolute=32.0, relative=0.5),
    "threads": LeakThreshold(absolute=16.0, relative=0.5),
    "connections": LeakThreshold(absolute=16.0, relative=0.5),
}
WARM_UP_FRACTION = 0.2
MIN_SAMPLES = 10


@dataclass
class Sample:
    t: float
    pid: int
    rss_mib: float
    open_files: int
    threads: int
    connections: int


@dataclass
class Trend:
    quantity: str
    pid: int
    samples: int
    seconds: float
    start: float
    end: float
    slope_per_min: float
    growth: float
    leak: bool

    def describe(self) -> str:
        return (f"{self.quantity}: {self.start:.1f} -> {self.end:.1f} over {self.seconds:.0f}s "
                f"({self.slope_per_min:+.2f}/min){' LEAK' if self.leak else ''}")


@dataclass
class ResourceReport:
    samples: list[Sample] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    errors: int = 0

    @property
    def leaks(self) -> list[Trend]:
        return [t for t in self.trends if t.leak]


def sample_tree(pid: int, t: float) -> Sample | None:
    """One sample of a process and its children, summed; None when the process is gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss = files = threads = conns = 0
    for proc in procs:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                files += proc.num_fds()
                threads += proc.num_threads()
                conns += len(proc.net_connections(kind="inet"))
        except psutil.Error:
            continue  # a worker that exited between listing and sampling: the rest still counts
    return Sample(round(t, 3), pid, round(rss / 2**20, 2), files, threads, conns)


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through (t, value): (intercept, slope per second)."""
    n = len(points)
    mean_t = sum(t for t, _v in points) / n
    mean_v = sum(v for _t, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _v in points)
    slope = 0.0 if var == 0 else sum((t - mean_t) * (v - mean_v) for t, v in points) / var
    return mean_v - slope * mean_t, slope


def trends(samples: list[Sample], thresholds: dict[str, LeakThreshold] | None = None) -> list[Trend]:
    thresholds = thresholds or DEFAULT_THRESHOLDS
    segments: dict[int, list[Sample]] = {}
    for sample in samples:
        segments.setdefault(sample.pid, []).append(sample)
    found = []
    for pid, segment in segments.items():
        judged = segment[int(len(segment) * WARM_UP_FRACTION):]
        if len(judged) < MIN_SAMPLES:
            continue
        t0, t1 = judged[0].t, judged[-1].t
        for quantity in QUANTITIES:
            intercept, slope = fit([(s.t, float(getattr(s, quantity))) for s in judged])
            start, end = intercept + slope * t0, intercept + slope * t1
            growth = end - start
            limit = thresholds[quantity]
            leak = growth > limit.absolute and growth > limit.relative * max(start, 1.0)
            found.append(Trend(quantity, pid, len(judged), round(t1 - t0, 1), round(start, 2), round(end, 2),
                               round(slope * 60, 3), round(growth, 2), leak))
    return found


class ResourceMonitor:
    """Samples the process tree of whatever ``pid()`` returns (the exporter, across restarts)."""

    def __init__(self, pid: Callable[[], int | None], started: float, interval: float = 1.0) -> None:
        self.pid = pid
        self.started = started
        self.interval = interval
        self.report = ResourceReport()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)

    def start(self) -> ResourceMonitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            pid = self.pid()
            if pid is None:
                continue  # killed by a fault step: nothing to sample until it is back
            sample = sample_tree(pid, time.monotonic() - self.started)
            if sample is None:
                self.report.errors += 1
                continue
            self.report.samples.append(sample)

    def stop(self, thresholds: dict[str, LeakThreshold] | None = None) -> ResourceReport:
        self._stop.set()
        self._thread.join(timeout=5)
        self.report.trends = trends(self.report.samples, thresholds)
        return self.report
