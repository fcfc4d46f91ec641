"""Explore's pace with the clean exporter: runs per hour on one stack (reset between runs), next to
the target of 500 an hour (about 7 s a run), and the stack's reset time between runs.

A fixed seed, so rounds on one machine draw the same schedules; RUNS runs, best and worst
per-run time reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from harness.model.plugins import load_target
from harness.report.figures import Figure

RUNS = 20
TARGET_PER_HOUR = 500
TARGET_RESET_S = 0.3


def run() -> dict:
    from harness.backends.local import LocalBackend
    from harness.search.explore import ExplorePlan
    from harness.search.explore_run import Explorer

    durations: list[float] = []
    resets: list[float] = []
    with LocalBackend() as stack, tempfile.TemporaryDirectory() as tmp:
        real_reset = stack.reset

        def timed_reset(**options: bool) -> None:  # reset(topology=...) since issue 28
            t0 = time.monotonic()
            real_reset(**options)
            resets.append(time.monotonic() - t0)

        stack.reset = timed_reset  # type: ignore[method-assign]
        explorer = Explorer(stack, load_target(), ExplorePlan(seed=1, runs=RUNS, keep_going=True,
                                                                        lacks=stack.backend.unsupported),
                            Path(tmp), on_run=lambda p: durations.append(p.result.duration_s), shrink_failures=False)
        found = explorer.explore()
    if found.harness_errors:  # a run the harness could not judge is not a pace
        raise RuntimeError(f"{found.harness_errors} of {found.runs} explore runs were harness errors")
    per_hour = found.runs_per_hour
    return {
        "figures": [Figure(f"explore on one stack (-j 1), {found.runs} runs from seed 1", "runs/hour", (per_hour,),
                           "higher", TARGET_PER_HOUR),
                    Figure("stack reset between explore runs, p95", "s",
                           (round(sorted(resets)[int(0.95 * (len(resets) - 1))], 4) if resets else 1e9,), "lower",
                           TARGET_RESET_S)],
        "runs": found.runs, "seconds": found.seconds, "runs_per_hour": per_hour,
        "run_seconds": [round(min(durations), 1), round(statistics.median(durations), 1), round(max(durations), 1)],
        "failures": len(found.failures), "harness_errors": found.harness_errors,
        "reset_p95_seconds": round(sorted(resets)[int(0.95 * (len(resets) - 1))], 4) if resets else None,
        "target_runs_per_hour": TARGET_PER_HOUR, "target_reset_seconds": TARGET_RESET_S,
        "runs_ratio_to_target": round(TARGET_PER_HOUR / per_hour, 3) if per_hour else None,
        "meets_targets": per_hour >= TARGET_PER_HOUR and bool(resets) and max(resets) <= TARGET_RESET_S,
    }
