"""The bundled target names what a pause does not stop at the source, in the exporter's own words:
its export jobs' statements carry the mark the target declares, and its lag poll is named."""

from __future__ import annotations

from exporter.jobs import JOB_MARK
from harness.model.target import BUNDLED, TargetDefinition


def test_the_bundled_target_declares_the_exporters_job_mark_and_lag_poll() -> None:
    target = TargetDefinition.load(BUNDLED)
    assert JOB_MARK.strip() in target.paused_statements and "max(id)" in target.paused_statements
    assert target.source_reads == "statements"
