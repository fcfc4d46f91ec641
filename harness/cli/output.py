"""What the CLI prints: verdict lines and tables (rich). Every text that comes from outside
(scenario names, check details, error messages) is escaped: rich would read ``[text]`` as markup."""

from __future__ import annotations

import os
from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.provision import Installed
from harness.report.compare import ScenarioChange
from harness.report.result import LedgerSummary, Resources, ScenarioResult, Verdict, failures_first

# Off a terminal (a CI log, a pipe), a table is as wide as its content up to this: rich's default
# there is 80 columns, which cut every scenario name in the verdict table to "scena…".
PLAIN_WIDTH = 400


def make_console(*, stderr: bool = True) -> Console:
    """On a terminal: colours and the terminal's width. Elsewhere: no colours (rich's own rule;
    NO_COLOR is honoured everywhere) and, unless COLUMNS says otherwise, wide enough that nothing
    is cut. Every table folds what does not fit instead of cutting it short."""
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=stderr, width=PLAIN_WIDTH)


console = make_console()


def table_of(title: str, columns: tuple[str, ...]) -> Table:
    """A table whose cells fold what does not fit (never "scena…"): a name is read whole or not at all."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def installed_table(found: dict[str, Installed | None]) -> Table:
    table = table_of("Faultline servers", ("component", "status", "version", "source", "path"))
    for name, item in found.items():
        if item is None:
            table.add_row(name, "[red]missing[/]", "", "", "")
        else:
            table.add_row(name, "[green]present[/]", item.version, item.source, item.path)
    return table


VERDICT_COLOUR = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "cyan"}


def print_result(result: ScenarioResult, prefix: str = "") -> None:
    colour = VERDICT_COLOUR[result.verdict]
    rate = f", {escape(result.rate_said)} replays" if result.rate_said else ""
    where = f", stack {result.stack}" if result.stack > 1 else ""  # -j: which stack played it
    console.print(f"{prefix}[{colour}]{result.verdict.upper():5}[/] {escape(result.name)} "
                  f"({result.duration_s:.1f}s{rate}{where})")
    for check in result.violations:
        console.print(f"      [red]✗ {escape(check.name)}[/]: {escape(check.detail)}")
    if result.reason:
        label = "skipped" if result.verdict is Verdict.SKIPPED else "harness error"
        console.print(f"      [yellow]{label}[/]: {escape(result.reason)}")


def steps_table() -> Table:
    """Every registered step kind: its name in incident files, role, module and parameters."""
    import dataclasses

    from harness.steps import registered

    table = table_of("Faultline step kinds", ("kind", "role", "module", "parameters", "what it does"))
    for name, cls in sorted(registered().items()):
        params = ", ".join(
            f"{f.name}" + ("" if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                           else f"={f.default!r}" if f.default is not dataclasses.MISSING else "={}")
            for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        doc = " ".join((cls.__doc__ or "").split()).split(". ")[0]
        table.add_row(name, cls.role, cls.__module__, escape(params), escape(doc))
    return table


def checks_table() -> Table:
    """Every registered check: the Expect field that turns it on, what it needs of a target, its module."""
    from harness.checks import registered_checks

    table = table_of("Faultline checks", ("check", "Expect field", "needs", "module",
                                          "what it holds the exporter to"))
    for name, check in registered_checks().items():
        field = check.expect_field or "(always on)"
        table.add_row(name, field, ", ".join(sorted(check.needs)) or "-", type(check).__module__,
                      escape(check.summary))
    return table


def results_table(results: list[ScenarioResult]) -> Table:
    table = table_of("Faultline verdicts", ("scenario", "verdict", "lost", "corrupted", "dead-lettered", "duplicates",
                                            "out of order", "recovery", "duration"))
    for r in failures_first(results):
        ledger = r.ledger or LedgerSummary()
        table.add_row(escape(r.name), f"[{VERDICT_COLOUR[r.verdict]}]{r.verdict}[/]", str(ledger.count("lost")),
                      str(ledger.count("delivered_corrupted")), str(ledger.count("dead_lettered")),
                      str(ledger.duplicates), str(ledger.order_inversions),
                      "-" if r.recovery_s is None else f"{r.recovery_s:.1f}s",
                      f"{r.duration_s:.1f}s")
    return table


def checkpoint_table(result: ScenarioResult) -> Table:
    table = table_of("Checkpoints", ("t", "written", "not yet settled", "in buffer", "corrupted"))
    for point in result.checkpoints:
        table.add_row(f"{point.at:.0f}s", str(point.written), str(point.missing), str(point.in_flight),
                      str(point.corrupted))
    return table


def trend_table(resources: Resources) -> Table:
    trends = table_of("Exporter resources (fitted trend per process lifetime)",
                      ("pid", "quantity", "start", "end", "per minute", "leak"))
    for trend in resources.trends:
        trends.add_row(str(trend.pid), trend.quantity, f"{trend.start:.1f}", f"{trend.end:.1f}",
                       f"{trend.slope_per_min:+.2f}", "[red]yes[/]" if trend.leak else "no")
    return trends


def comparison_table(rows: list[ScenarioChange], title: str) -> Table:
    table = table_of(escape(title), ("scenario", "verdict", "recovery", "throughput under fault (rec/s)",
                                     "violations now"))
    for row in rows:
        verdict = escape(f"{row.verdict_a} -> {row.verdict_b}")
        if row.verdict_changed:
            verdict = f"[bold red]{verdict} (changed)[/]"
        throughput = "; ".join(f"{fault}: {a} -> {b}" for fault, (a, b) in row.throughput_under_fault.items())
        changes = ", ".join(f"{cls} {a} -> {b}" for cls, (a, b) in row.changes.items())
        violations = ", ".join(row.violations_b) + (f" ({changes})" if changes else "")
        table.add_row(escape(row.scenario), verdict, f"{row.recovery_a} -> {row.recovery_b}",
                      escape(throughput) or "-", escape(violations) or "-")
    return table


def print_what_failed(results: list[ScenarioResult]) -> None:
    """Under the table, where a CI log is read from the bottom: each scenario that did not pass and
    its first violation or reason, one line each."""
    for r in failures_first(results):
        if r.verdict is Verdict.PASS:
            break
        first = r.violations[0] if r.violations else None
        why = f"{first.name}: {first.detail}" if first is not None else (r.reason or "")
        console.print(f"[{VERDICT_COLOUR[r.verdict]}]{r.verdict.upper():5}[/] {escape(r.name)}: "
                      f"{escape(why[:300])}", soft_wrap=True)


def judged_line(results: list[ScenarioResult]) -> str:
    """How many scenarios were judged, and how: a gate that judged none is not a pass, and says so."""
    counts = Counter(str(r.verdict) for r in results)
    judged = counts["pass"] + counts["fail"]
    if not judged:
        return (f"[red]judged 0 of {len(results)} scenario(s)[/]: nothing was judged, so this is not a pass "
                f"({counts['skipped']} skipped, {counts['error']} harness error(s))")
    return (f"judged {judged} of {len(results)} scenario(s): {counts['pass']} held, {counts['fail']} failed"
            + (f", {counts['skipped']} skipped" if counts["skipped"] else "")
            + (f", {counts['error']} harness error(s)" if counts["error"] else ""))
