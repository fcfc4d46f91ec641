"""A scenario that needs a knob the target does not map is skipped with that reason, never run
with the knob silently left out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.model.target import BUNDLED

pytestmark = pytest.mark.faultline


@pytest.mark.timeout(300)
def test_a_scenario_needing_a_knob_the_target_lacks_is_skipped_with_the_reason(tmp_path: Path) -> None:
    target = tmp_path / "no-timeout-knob.toml"
    target.write_text(BUNDLED.read_text().replace('delivery_timeout_ms = "EXPORTER_KAFKA_MESSAGE_TIMEOUT_MS"\n', ""))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "kafka_send_failures", "--target", str(target),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]  # nothing could run: not a pass
    scenario = json.loads((tmp_path / "out" / "report.json").read_text())["scenarios"][0]
    assert scenario["verdict"] == "skipped"
    assert "has no knob 'delivery_timeout_ms'" in scenario["skipped"] and scenario["error"] is None
