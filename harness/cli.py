"""The ``faultline`` command.

Exit codes everywhere: 0 all held, 1 an invariant of the system under test was violated,
2 the harness itself failed (missing binary, bad input, a server that would not start).
"""

from __future__ import annotations

import json
import sys
import threading
import time

import click
from rich.console import Console
from rich.table import Table

from harness.backends.factory import BACKENDS, make_backend
from harness.errors import FaultlineError
from harness.lifecycle import unwind_on_termination
from harness.provision import Installed, check_all, provision_all

EXIT_OK, EXIT_VIOLATION, EXIT_HARNESS = 0, 1, 2

console = Console(stderr=True)


class FaultlineGroup(click.Group):
    """Any FaultlineError becomes a one-line message and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FaultlineError as exc:
            console.print(f"[bold red]faultline: error:[/] {exc}")
            sys.exit(EXIT_HARNESS)
        except KeyboardInterrupt:
            console.print("[yellow]faultline: interrupted; everything started was stopped[/]")
            sys.exit(130)


@click.group(cls=FaultlineGroup)
@click.version_option(package_name="faultline")
def main() -> None:
    """Faultline: chaos harness and verification suite for data exporters."""
    unwind_on_termination()


def _table(found: dict[str, Installed | None]) -> Table:
    table = Table(title="Faultline servers")
    for column in ("component", "status", "version", "source", "path"):
        table.add_column(column)
    for name, item in found.items():
        if item is None:
            table.add_row(name, "[red]missing[/]", "", "", "")
        else:
            table.add_row(name, "[green]present[/]", item.version, item.source, item.path)
    return table


@main.command()
@click.option("--check", is_flag=True, help="Only report what is present; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def setup(check: bool, as_json: bool) -> None:
    """Find or install (and cache) PostgreSQL, Redis, Java, Kafka and Toxiproxy."""
    if check:
        found = check_all()
    else:
        with console.status("provisioning servers") as status:
            def log(message: str) -> None:
                status.update(message)
                console.log(message)

            found = dict(provision_all(log, on_done=lambda item: console.log(f"{item.name}: {item.version}")))
    if as_json:
        click.echo(json.dumps({k: (v.to_dict() if v else None) for k, v in found.items()}, indent=2))
    else:
        console.print(_table(found))
    missing = [name for name, item in found.items() if item is None]
    if missing:
        console.print(f"[red]missing: {', '.join(missing)}[/]; run `faultline setup` to install them")
        sys.exit(EXIT_HARNESS)


@main.command()
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--check", is_flag=True,
              help="Start, verify every service through its proxy, stop, print one JSON object.")
@click.option("--start-timeout", type=float, default=60.0, show_default=True)
def up(backend: str, check: bool, start_timeout: float) -> None:
    """Start the stack and print its endpoints until Ctrl-C."""
    from harness.services import probes
    from harness.stack import LINKS

    with make_backend(backend, start_timeout=start_timeout) as stack:
        if check:
            ready = {
                "postgres": probes.postgres_ready(stack.postgres.proxied.host, stack.postgres.proxied.port,
                                                  stack.postgres_user, stack.postgres_password,
                                                  stack.postgres_database),
                "redis": probes.redis_ready(stack.redis.proxied.host, stack.redis.proxied.port,
                                            stack.redis_password),
                "kafka": probes.kafka_ready(stack.kafka_bootstrap(proxied=True)),
                "toxiproxy": bool(stack.toxiproxy.version()),
            }
            result = {
                "ok": all(ready.values()),
                "services": {name: {"ready": ready[name],
                                    "start_seconds": round(stack.start_seconds.get(name, 0.0), 3),
                                    **({"direct": stack.link(name).direct.address,
                                        "proxied": stack.link(name).proxied.address} if name in LINKS
                                       else {"api": stack.toxiproxy_api.address})}
                             for name in ready},
                "total_start_seconds": round(stack.start_seconds["total"], 3),
            }
            click.echo(json.dumps(result))
            if not result["ok"]:
                sys.exit(EXIT_HARNESS)
            return
        described = stack.describe()
        described["postgres_dsn"] = stack.postgres_dsn()
        described["redis_url"] = stack.redis_url()
        described["kafka_bootstrap"] = stack.kafka_bootstrap()
        click.echo(json.dumps(described, indent=2), nl=True)
        console.print("[green]stack is up[/]; Ctrl-C stops it")
        stop = threading.Event()
        while not stop.wait(3600):  # woken by Ctrl-C/SIGTERM as KeyboardInterrupt
            continue


@main.command()
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Directory for NAME.json.")
def bench(name: str, out: str | None) -> None:
    """Run the benchmark bench/NAME.py; writes reports/bench/NAME.json."""
    from harness.bench import run_benchmark

    t0 = time.monotonic()
    result, path = run_benchmark(name, out)
    console.print_json(json.dumps(result))
    console.print(f"wrote {path} in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":  # pragma: no cover
    main()
