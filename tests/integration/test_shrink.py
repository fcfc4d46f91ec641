"""`faultline shrink` cuts a failing incident to the steps that matter, and the result still fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import incident

pytestmark = pytest.mark.faultline

NOISY = """
[incident]
name = "noisy_send_failure"
description = "Kafka outage buried among faults that do not matter"
during_s = 6.0

[workload]
records = 200
chunk = 25

[exporter_env]
EXPORTER_KAFKA_MESSAGE_TIMEOUT_MS = "1500"
FAULTLINE_EXPORTER_DEFECT = "ack_before_send"

[expect]
no_loss = true

[[steps]]
at = 0.2
duration = 2.0
fault = "toxic"
link = "redis"
type = "latency"
attributes = { latency = 50 }

[[steps]]
at = 0.5
duration = 4.0
fault = "link_down"
link = "kafka"

[[steps]]
at = 1.0
duration = 2.0
fault = "toxic"
link = "postgres"
type = "latency"
attributes = { latency = 50 }

[[steps]]
at = 4.0
duration = 1.0
fault = "freeze_exporter"
"""


@pytest.mark.timeout(900)
def test_shrink_keeps_the_violation_with_at_most_three_steps(tmp_path: Path) -> None:
    source = tmp_path / "noisy.toml"
    source.write_text(NOISY)
    result = subprocess.run([sys.executable, "-m", "harness.cli", "shrink", str(source)], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    minimal = incident.load(tmp_path / "noisy.min.toml")
    assert len(minimal.steps) <= 3
    assert [type(s.do).__name__ for s in minimal.steps] == ["LinkDown"]  # the one fault that matters
    assert "trial" in result.stderr  # progress goes to stderr, like every faultline message
    replay = subprocess.run([sys.executable, "-m", "harness.cli", "reproduce", str(tmp_path / "noisy.min.toml"),
                             "--out", str(tmp_path / "replay")], capture_output=True, text=True, timeout=170)
    assert replay.returncode == 1, replay.stdout + replay.stderr
