"""``faultline bench``: the command (see ``harness.cli.bench`` for what it writes and how the
README table is made from it)."""

from __future__ import annotations

import sys
import time

import click
from rich.markup import escape

from harness.cli.base import EXIT_OK, EXIT_VIOLATION, WritableDir
from harness.cli.output import console


@click.command()
@click.argument("names", nargs=-1)
@click.option("--out", type=WritableDir(), default=None, help="Directory for NAME.json.")
@click.option("--table", "show_table", is_flag=True,
              help="Print README's benchmark table, generated from the last bench files (bench/results/*.json).")
@click.option("--write", is_flag=True, help="With --table: replace README's table with it.")
@click.option("--check", is_flag=True, help="With --table: exit 1 when README's table is not the one they give.")
def bench(names: tuple[str, ...], out: str | None, show_table: bool, write: bool, check: bool) -> None:
    """Run the benchmarks bench/NAME.py; each writes reports/bench/NAME.json and, in a checkout,
    bench/results/NAME.json. Exit 1 when a figure missed its target (said by how much)."""
    if show_table or write or check:
        if names or not show_table:
            raise click.UsageError("--table prints README's table (--write, --check: with --table), naming no bench")
        _bench_table(write, check)
        return
    if not names:
        raise click.UsageError("name the benchmarks to run, or --table for README's table")
    from harness.cli.bench import missed, run_benchmark

    misses = []
    for name in names:
        t0 = time.monotonic()
        result, paths = run_benchmark(name, out)
        for figure in result.figures:
            console.print(f"{escape(name)}: {escape(figure.name)}: {figure.worst:g} {escape(figure.unit)} "
                          f"(rounds {', '.join(f'{r:g}' for r in figure.rounds)}) {escape(figure.verdict())}")
        console.print(f"wrote {', '.join(map(str, paths))} in {time.monotonic() - t0:.1f}s")
        misses += missed(result)
    for line in misses:
        console.print(f"[red]missed[/]: {escape(line)}")
    sys.exit(EXIT_VIOLATION if misses else EXIT_OK)


def _bench_table(write: bool, check: bool) -> None:
    from harness.cli.bench import last_bench_files, table, write_table
    from harness.paths import project_root

    files = last_bench_files()
    readme = project_root() / "README.md"
    if write:
        changed = write_table(readme, files)
        console.print(f"{readme}: {'table rewritten' if changed else 'table already current'}")
    elif check and table(files) not in readme.read_text():
        console.print(f"[red]{readme}: its bench table is not the one bench/results gives[/]; "
                      "`faultline bench --table --write` regenerates it")
        sys.exit(EXIT_VIOLATION)
    elif not check:
        click.echo(table(files))
