"""`faultline run` under Ctrl-C and with --keep: reports are written with what finished, nothing is
left behind, and a kept stack can be recounted by hand (issue 13)."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from harness.infra.waiting import wait_for

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(300)]


class Faultline:
    """`faultline run ...` as a user starts it, with its output read line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_line(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout}s: {''.join(self.seen)[-3000:]}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)


def gone(processes: list[psutil.Process]) -> bool:
    return not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_kept_stack_is_reachable_and_torn_down_on_ctrl_c(tmp_path: Path) -> None:
    run = Faultline("baseline", "--keep", "--out", str(tmp_path / "out"))
    try:
        run.wait_line("stack kept")
        where = tmp_path / "out" / "stack.json"
        assert stat.S_IMODE(where.stat().st_mode) == 0o600  # it holds the administrator's passwords
        kept = json.loads(where.read_text())
        names = kept["scenarios"]["baseline"]
        with psycopg.connect(kept["postgres_dsn"], connect_timeout=10) as conn:
            rows = conn.execute(f'SELECT count(*) FROM "{names["source_table"]}"').fetchone()
        report = json.loads((tmp_path / "out" / "report.json").read_text())  # written before holding
        assert rows is not None and rows[0] == report["scenarios"][0]["ledger"]["writes"]["ok"] > 0
        started = run.descendants()
        assert started, "the kept stack's servers run under faultline"
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(timeout=120) == 0  # the run passed; Ctrl-C only ended the keeping
        wait_for(lambda: gone(started), timeout=30, what="the kept stack's processes to stop")
        assert not Path(kept["workdir"]).exists()
    finally:
        run.close()


@pytest.mark.parametrize("presses", [1, pytest.param(2, marks=pytest.mark.slow)],  # twice: slow, for the 12 minutes
                         ids=["once", "twice"])
def test_ctrl_c_reports_what_finished_and_leaves_nothing(tmp_path: Path, presses: int) -> None:
    out = tmp_path / "out"
    # -j 1: one after another, so that the third is the one Ctrl-C keeps from starting.
    run = Faultline("baseline", "kafka_send_failures", "exporter_kill_restart", "--out", str(out), "-j", "1")
    try:
        run.wait_line("PASS  baseline")
        run.wait_line("kafka_send_failures t=")  # the second scenario is under way
        started = run.descendants()
        for _ in range(presses):
            run.proc.send_signal(signal.SIGINT)
            time.sleep(0.3)  # two distinct presses, as a person makes them
        code = run.proc.wait(timeout=180)
        report = json.loads((out / "report.json").read_text())
        assert code == 130, [(s["name"], [c for c in s["checks"] if not c["ok"]], s.get("error"))
                             for s in report["scenarios"]]
        assert report["interrupted"] is True
        names = [s["name"] for s in report["scenarios"]]
        assert "exporter_kill_restart" not in names  # never started
        assert names[0] == "baseline" and report["scenarios"][0]["verdict"] == "pass"
        if presses == 1:  # healed, reconciled and reported
            assert names == ["baseline", "kafka_send_failures"]
            assert report["scenarios"][1]["interrupted"] is True
        wait_for(lambda: gone(started), timeout=30, what="everything the run started to stop",
                 describe=lambda: str([p.pid for p in started if p.is_running()]))
    finally:
        run.close()


def test_sigterm_repeated_while_the_run_unwinds_still_stops_everything(tmp_path: Path) -> None:
    """Found by pkill: a second SIGTERM that came while `faultline run` was stopping its servers
    raised again in the middle of that teardown, and Toxiproxy, Redis, Kafka and the exporter
    were left running for `faultline clean` to find."""
    out = tmp_path / "out"
    run = Faultline("kafka_send_failures", "--out", str(out), "-j", "1")
    try:
        run.wait_line("kafka_send_failures t=")  # under way: the exporter and every server run
        started = run.descendants()
        run.proc.send_signal(signal.SIGTERM)
        for _ in range(200):  # one every 50 ms, for at most 10 s, while it unwinds
            if run.proc.poll() is not None:
                break
            time.sleep(0.05)
            run.proc.send_signal(signal.SIGTERM)
        code = run.proc.wait(timeout=180)
        assert code == 128 + signal.SIGTERM, "".join(run.seen)[-3000:]
        assert json.loads((out / "report.json").read_text())["interrupted"] is True
        wait_for(lambda: gone(started), timeout=30, what="everything the run started to stop",
                 describe=lambda: str([p.pid for p in started if p.is_running()]))
    finally:
        run.close()
