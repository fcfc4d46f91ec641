"""``faultline init`` (a commented target definition for a team's own exporter, from flags) and
``faultline doctor --target FILE`` (that definition checked against the running exporter)."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import textwrap
from pathlib import Path

import click
from rich.markup import escape

from harness.cli.base import EXIT_OK, EXIT_VIOLATION
from harness.cli.output import console, table_of
from harness.model.target import PLACEHOLDERS, TargetDefinition, TargetError

SERVERS = ("postgres", "redis", "kafka")
APIS = ("pause", "exports")


def _env_pair(value: str) -> tuple[str, str]:
    name, sep, template = value.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{value!r}: write NAME=VALUE, e.g. DATABASE_URL={{postgres_dsn}}")
    return name.strip(), template


def render(name: str, command: list[str], env: list[tuple[str, str]], uses: list[str], ready_path: str,
           metrics_path: str, counters: tuple[str, str], record_id: str, record_payload: str, apis: list[str]) -> str:
    """The definition's text: every field with a comment saying what it is and how it is checked."""
    q = json.dumps  # a JSON string is a TOML basic string
    env_lines = "\n".join(f"{n} = {q(v)}" for n, v in env) or \
        "# MY_DATABASE_URL = \"{postgres_dsn}\"   (name your exporter's own variables)"
    delivered, dead_lettered = counters
    metrics = (f"[metrics]\n# Counters by role (Prometheus names): records delivered (doctor checks it moves) and "
               f"dead-lettered.\ndelivered = {q(delivered)}\ndead_lettered = {q(dead_lettered)}\n") if delivered else (
        "# [metrics]\n# delivered = \"my_records_delivered_total\"\n"
        "# dead_lettered = \"my_records_dead_lettered_total\"\n"
        "# (none: the metric checks are reported not applicable)\n")
    return f"""# Target definition for {name}: everything Faultline knows about the exporter under test.
# Written by `faultline init`; check every field against the running exporter with
#   faultline doctor --target <this file>
name = {q(name)}
# How to start it; run from where you start Faultline. Placeholders are filled per run:
{textwrap.fill(", ".join(sorted(PLACEHOLDERS - {"env"})), 96, initial_indent="#   ", subsequent_indent="#   ")}
command = {q(command)}
# The servers its pipeline goes through (a fault on another one is idle, and said so).
uses = {q(uses)}
# Answers 200 once it is ready (ready_body: text the answer must also contain).
ready_path = {q(ready_path)}
metrics_path = {q(metrics_path)}
# The HTTP APIs it offers besides readiness: "pause" (POST pause_path?grace=S, then resume_path)
# and "exports" (POST exports_path). Scenarios needing one it lacks are skipped with the reason.
apis = {q(apis)}

# Its environment: every endpoint through Faultline's proxies, its own credentials.
[env]
{env_lines}

[sinks]
# The topic it writes records to: tell it the name through [env] (`{{topic}}`).
kafka_topic = "{{topic}}"

# Where a record sits in a message (dotted paths into the JSON value).
[record]
id = {q(record_id)}
payload = {q(record_payload)}

{metrics}"""


@click.command()
@click.option("--name", required=True, help="The target's name (reports use it).")
@click.option("--command", "command_line", required=True, help="How to start the exporter, as a shell would split it.")
@click.option("--env", "env", multiple=True, callback=lambda _c, _p, v: [_env_pair(x) for x in v],
              help="NAME=VALUE for its environment, placeholders allowed: --env DB={postgres_dsn} (repeat).")
@click.option("--uses", default="postgres,redis,kafka", show_default=True, help="Servers its pipeline goes through.")
@click.option("--ready-path", default="/healthz", show_default=True)
@click.option("--metrics-path", default="/metrics", show_default=True)
@click.option("--delivered-metric", default="", help="Its counter of records delivered (Prometheus name).")
@click.option("--dead-lettered-metric", default="", help="Its counter of records dead-lettered (with the other).")
@click.option("--record-id", default="id", show_default=True, help="Where a message's record id is (dotted path).")
@click.option("--record-payload", default="payload", show_default=True, help="Where its payload is.")
@click.option("--apis", default="", help=f"Comma-separated APIs it offers: {', '.join(APIS)}.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File to write [faultline/NAME.toml].")
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
def init(name: str, command_line: str, env: list[tuple[str, str]], uses: str, ready_path: str, metrics_path: str,
         delivered_metric: str, dead_lettered_metric: str, record_id: str, record_payload: str, apis: str,
         out: str | None, force: bool) -> None:
    """Write a commented target definition for your exporter, checked before it is written."""
    servers = [s.strip() for s in uses.split(",") if s.strip()]
    offered = [a.strip() for a in apis.split(",") if a.strip()]
    for value, allowed, option in ((servers, SERVERS, "--uses"), (offered, APIS, "--apis")):
        if set(value) - set(allowed):
            raise click.BadParameter(f"{', '.join(sorted(set(value) - set(allowed)))}: not one of "
                                     f"{', '.join(allowed)}", param_hint=option)
    if bool(delivered_metric) != bool(dead_lettered_metric):
        raise click.BadParameter("name both counters or neither",
                                 param_hint="--delivered-metric/--dead-lettered-metric")
    text = render(name, shlex.split(command_line), env, servers, ready_path, metrics_path,
                  (delivered_metric, dead_lettered_metric), record_id, record_payload, offered)
    path = Path(out) if out else Path("faultline") / f"{name}.toml"
    if path.exists() and not force:
        raise click.BadParameter(f"{path} exists (--force overwrites it)", param_hint="--out")
    with tempfile.TemporaryDirectory(prefix="faultline-init-") as scratch:
        draft = Path(scratch) / path.name
        draft.write_text(text)
        try:
            TargetDefinition.load(draft)  # what it writes loads: a flag that breaks it is refused here
        except TargetError as exc:
            raise click.BadParameter(str(exc).replace(str(draft), "the definition"), param_hint="flags") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    console.print(f"wrote {escape(str(path))}; check it against your exporter: "
                  f"faultline doctor --target {escape(str(path))}")


@click.command()
@click.option("--target", "target_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--backend", type=click.Choice(("local", "docker", "external")), default="local", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
def doctor(target_path: str, backend: str, as_json: bool) -> None:
    """Start the stack and the target once, with no fault, and check every field of its
    definition against what really happens. Exit 0 when every field is confirmed, 1 when one is
    wrong (each with what was seen instead), 2 when the definition cannot be read."""
    from harness.backends.factory import make_backend
    from harness.model.plugins import load_target
    from harness.play.doctor import examine

    target = load_target(Path(target_path))
    with make_backend(backend, logical_replication=target.postgres_logical_replication,
                      redis_sentinel=target.redis_discovery == "sentinel") as stack, \
            tempfile.TemporaryDirectory(prefix="faultline-doctor-") as work:
        found, _result = examine(stack, target, Path(work))
    if as_json:
        click.echo(json.dumps([{**f.__dict__, "said": f.said} for f in found], indent=2))
    table = table_of(f"faultline doctor: {target.name} ({target_path})", ("field", "", "what was seen"))
    for finding in found:
        colour = {True: "green", False: "red", None: "yellow"}[finding.ok]
        table.add_row(escape(finding.field), f"[{colour}]{finding.said}[/]", escape(finding.evidence))
    console.print(table)
    wrong = [f for f in found if f.ok is False]
    confirmed = sum(f.ok is True for f in found)
    console.print(f"{confirmed} of {len(found)} field(s) confirmed, none wrong" if not wrong else
                  f"{len(wrong)} field(s) wrong: {escape(', '.join(f.field for f in wrong))}")
    sys.exit(EXIT_VIOLATION if wrong else EXIT_OK)
