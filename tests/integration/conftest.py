"""Fixtures that start the bundled exporter, as a black box, against the session's stack."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.infra.stack import Stack
from harness.model.target import TargetDefinition
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.rig.workload import SourceWriter


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


@pytest.fixture
def tiny_export_dir(run_ctx: RunContext) -> Iterator[Path]:
    """The exporter's export directory on a 128 KiB tmpfs (root only; skipped with the reason otherwise)."""
    path = run_ctx.workdir / "exports"
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=True)
