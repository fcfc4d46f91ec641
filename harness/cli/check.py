"""``faultline check FILE...``: every input validated as a run would, and nothing started. For a
team's CI before any server is up: incident files, target definitions, scenario modules and
run reports, each refused with file:line:field as ``run`` or ``reproduce`` would refuse it."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from harness.cli.base import EXIT_HARNESS
from harness.cli.output import console
from harness.errors import FaultlineError, HarnessError
from harness.model.tomlfile import read_toml


class CheckError(HarnessError):
    """A file ``faultline check`` cannot tell the kind of."""


def validate(path: Path) -> str:
    """What ``path`` is, once valid; its loader's error otherwise."""
    if path.is_dir() or path.suffix == ".json":
        from harness.report.report_file import read_report

        report = read_report(path / "report.json" if path.is_dir() else path)
        return f"report of run {report.run_id}: {len(report.scenarios)} scenario(s), {report.verdict}"
    if path.suffix == ".py":
        from harness.catalogue.registry import load_file

        scenario = load_file(path)
        return f"scenario {scenario.name}: {len(scenario.steps)} step(s)"
    data = read_toml(path, "input file", CheckError)
    if "incident" in data:
        from harness.catalogue import incident

        scenario = incident.load(path)
        return f"incident file {scenario.name}: {len(scenario.steps)} step(s), {scenario.workload.records} records"
    if "command" in data or "extends" in data:
        from harness.model.plugins import load_target

        target = load_target(path)
        return f"target definition {target.name}: uses {', '.join(target.uses)}"
    raise CheckError(f"{path}: neither an incident file (an [incident] table) nor a target definition "
                     "(command = [...]); a report is report.json or its run directory, a scenario a .py file")


@click.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate FILES (incident files, target definitions, scenario modules, report.json or run
    directories) as a run would, starting nothing. Exit 0 when every one is valid, 2 otherwise;
    each refusal names file:line:field."""
    refused = 0
    for path in files:
        try:
            console.print(f"[green]ok[/]     {escape(str(path))}: {escape(validate(path))}", soft_wrap=True)
        except FaultlineError as exc:
            refused += 1
            console.print(f"[red]refused[/] {escape(str(exc))}", soft_wrap=True)
    if refused:
        console.print(f"{refused} of {len(files)} file(s) refused")
        sys.exit(EXIT_HARNESS)
