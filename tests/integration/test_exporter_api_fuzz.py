"""The job API fuzzed from its own OpenAPI schema (Schemathesis) against a live exporter: bodies,
queries and paths the schema allows (positive cases) and ones it does not (negative), with a
valid token. Whatever comes, the exporter answers below 500, and what the schema refuses is
refused. ``FAULTLINE_FUZZ_CASES`` sets the cases per operation and mode (the slow session runs
many more)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection

from harness.model.api_tokens import HARNESS_USER
from harness.rig.exporter_process import ExporterProcess, RunContext

pytestmark = [pytest.mark.faultline, pytest.mark.timeout(600)]
CASES = int(os.environ.get("FAULTLINE_FUZZ_CASES", "25"))


def fuzz(run_ctx: RunContext, start_exporter: Callable[..., ExporterProcess], cases: int) -> dict[str, int]:
    """Every operation of the live schema, positive and negative cases; how many were sent each."""
    exporter = start_exporter(EXPORTER_API_DOCS="true")  # the schema is served only when asked for
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{run_ctx.http_port}/openapi.json", wait_for_schema=30)
    sent: dict[str, int] = {}
    for found in schema.get_all_operations():
        for mode in schemathesis.GenerationMode:
            fuzz_operation(found.ok(), mode, exporter, cases, sent)
    return sent


def fuzz_operation(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode,
                   exporter: ExporterProcess, cases: int, sent: dict[str, int]) -> None:
    label = f"{operation.method.upper()} {operation.path} ({mode.value})"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=cases, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def one(case: schemathesis.Case) -> None:
        if mode is schemathesis.GenerationMode.POSITIVE and case.path == "/pause" \
                and case.method.upper() == "POST" and isinstance(case.query, dict):
            case.query["grace"] = 1  # a valid 600 s would only wait for an idle pipeline
        response = case.call(headers=exporter.auth(HARNESS_USER), timeout=30)
        case.validate_response(response, checks=[not_a_server_error, negative_data_rejection])
        if case.path == "/pause" and response.status_code == 200:
            assert exporter.post("/resume", timeout=10).status_code == 200
        sent[label] = sent.get(label, 0) + 1

    try:
        one()
    except Unsatisfiable:
        # No parameters, no body: nothing to make wrong (GET /healthz). Said, not hidden.
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.path
        sent[f"{label}: none possible"] = 0


def test_no_input_makes_the_job_api_fail(run_ctx: RunContext, start_exporter: Callable[..., ExporterProcess]) -> None:
    started = time.monotonic()
    sent = fuzz(run_ctx, start_exporter, CASES)
    assert any(label.startswith("POST /exports") for label in sent), sent  # the schema was read whole
    assert sum(sent.values()) >= 5 * CASES, sent
    print(f"fuzzed {sum(sent.values())} requests over {len(sent)} operation modes in "
          f"{time.monotonic() - started:.0f}s")
