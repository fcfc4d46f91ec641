"""Fixtures that start the bundled exporter, as a black box, against the session's stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.stack import Stack
from harness.target import ExporterProcess, RunContext, TargetDefinition
from harness.workload import SourceWriter


@pytest.fixture
def run_ctx(fresh_stack: Stack, namespace: str, tmp_path: Path) -> RunContext:
    ctx = RunContext(fresh_stack, namespace, tmp_path / "run")
    ctx.workdir.mkdir(parents=True)
    SourceWriter(fresh_stack, ctx.source_table).create()
    return ctx


@pytest.fixture
def writer(run_ctx: RunContext) -> SourceWriter:
    return SourceWriter(run_ctx.stack, run_ctx.source_table)


@pytest.fixture
def start_exporter(run_ctx: RunContext) -> Iterator[Callable[..., ExporterProcess]]:
    started: list[ExporterProcess] = []

    def start(**extra_env: str) -> ExporterProcess:
        process = ExporterProcess(TargetDefinition.load(), run_ctx, extra_env=dict(extra_env))
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.close()
