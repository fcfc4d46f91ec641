"""The wall-clock shim preloaded into a process moves its wall clock by the offset in the file, at
once when the file changes, and leaves its monotonic clock, its sleeps and every other process's
clock alone (the harness's own clock included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.provision.components import require
from harness.provision.wallclock import OFFSET_ENV

PROBE = """
import json, sys, time
wall, mono = time.time(), time.monotonic()
time.sleep(0.05)
print(json.dumps({"wall": wall, "mono": mono, "slept": time.monotonic() - mono}), flush=True)
input()  # the test has rewritten the offset
deadline = time.monotonic() + 5  # the shim re-reads the file at most every 200 ms: poll for the jump
while time.time() < wall + 1800 and time.monotonic() < deadline:
    time.sleep(0.02)
print(json.dumps({"wall_after": time.time()}), flush=True)
"""


@pytest.mark.timeout(60)
def test_the_shim_moves_the_wall_clock_only_and_follows_the_file(tmp_path: Path) -> None:
    offset = tmp_path / "offset"
    offset.write_text("-3600\n")
    env = dict(os.environ, LD_PRELOAD=require("wallclock").path, **{OFFSET_ENV: str(offset)})
    proc = subprocess.Popen([sys.executable, "-c", PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            text=True)
    assert proc.stdout is not None
    seen = json.loads(proc.stdout.readline())  # its first clocks, read under -3600
    now, mono = time.time(), time.monotonic()
    offset.write_text("+60\n")
    out, _ = proc.communicate("go\n", timeout=30)
    seen |= json.loads(out)
    assert abs(seen["wall"] - (now - 3600)) < 10, seen  # an hour back at first
    assert abs(seen["mono"] - mono) < 10  # the monotonic clock is the machine's
    assert 0.04 < seen["slept"] < 1.0  # sleeps work (libfaketime 0.9.10 broke them: EINVAL)
    assert abs(seen["wall_after"] - (time.time() + 60)) < 10, seen  # the new offset was followed
    assert abs(time.time() - now) < 10  # and this process's clock never moved


WAITS = """
import multiprocessing, time
event = multiprocessing.get_context("spawn").Event()
started = time.monotonic()
for _ in range(10):
    event.wait(0.05)  # a deadline on the shifted realtime clock, waited for by the real one
print(time.monotonic() - started)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("shift", ["+3600", "-3600"])
def test_timed_waits_on_the_realtime_clock_last_what_they_ask(tmp_path: Path, shift: str) -> None:
    offset = tmp_path / "offset"
    offset.write_text(shift + "\n")
    env = dict(os.environ, LD_PRELOAD=require("wallclock").path, **{OFFSET_ENV: str(offset)})
    took = float(subprocess.run([sys.executable, "-c", WAITS], env=env, capture_output=True, text=True, timeout=30,
                                check=True).stdout)
    assert 0.45 < took < 5.0, took  # not an hour (forward), not zero (back)


DRIFT = """
import time
wall, mono = time.time(), time.monotonic()
time.sleep(1.0)  # a relative sleep waits by the real clock
print(time.time() - wall, time.monotonic() - mono)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rate", [3.0, 0.25])
def test_a_drifting_wall_clock_runs_at_its_rate_and_the_monotonic_one_does_not(tmp_path: Path, rate: float) -> None:
    offset = tmp_path / "offset"
    offset.write_text(f"+0 {rate} {time.monotonic_ns()}\n")
    env = dict(os.environ, LD_PRELOAD=require("wallclock").path, **{OFFSET_ENV: str(offset)})
    out = subprocess.run([sys.executable, "-c", DRIFT], capture_output=True, text=True, env=env, timeout=30,
                         check=True).stdout
    wall, mono = (float(x) for x in out.split())
    assert 1.0 <= mono < 3.0, out  # the real second slept, however busy the machine
    assert abs(wall / mono - rate) < 0.1 * rate, (wall, mono, rate)  # the wall clock ran at its rate
