"""``report.html``: one self-contained page (inline CSS and SVG, no script, no network) per run.

Per scenario: a timeline of delivered records/s, buffer length, errors/s and latency with
every fault window shaded and labelled; the verdict and every check; ledger counts; sample ids
of lost, corrupted and dead-lettered records with their hop or reason; the exporter's log
lines around the violations. A summary table of all scenarios on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from harness.report import explore_report
from harness.report.findings import ChangeSummary, FailoverLoss
from harness.report.result import (
    CheckpointPoint,
    LedgerSummary,
    LoadStats,
    Point,
    Resources,
    RunReport,
    ScenarioResult,
    Series,
    Verdict,
    failures_first,
)

CHARTS = (
    ("delivered_per_s", "delivered records/s", "#2563eb"),
    ("buffer_length", "buffer length (stream entries)", "#7c3aed"),
    ("errors_per_s", "errors/s (every error counter the target names)", "#dc2626"),
    ("latency_p50_ms", "end-to-end latency p50 (ms)", "#059669"),
)
FAULT_COLOURS = ("#fde68a", "#fecaca", "#bfdbfe", "#d9f99d", "#fbcfe8", "#ddd6fe")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#111;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-top:1px solid #ddd;padding-top:16px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f4f6}.pass{color:#15803d;font-weight:600}
.fail{color:#b91c1c;font-weight:600}.error{color:#b45309;font-weight:600}.skipped{color:#0e7490;font-weight:600}.na{color:#6b7280}
.chart{display:block;margin:4px 0}
pre{background:#f9fafb;border:1px solid #e5e7eb;padding:8px;font-size:12px;white-space:pre-wrap;
word-break:break-all}.ids{font-family:ui-monospace,monospace;font-size:12px}
"""


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


LABEL_CHARS = 40  # a window's label on the chart: its first 40 characters (the whole in its tooltip)
LABEL_CHAR_W = 6.2  # px per character at font-size 10, a little over the widest of Chromium's sans
LABEL_ROW_H = 13  # a line of 10 px text: its box is 12 px high in Chromium


def label_rows(starts: Sequence[tuple[float, int]]) -> list[int]:
    """For window labels starting at ``x`` and ``chars`` characters long (in drawing order), the
    row each goes on: the first row whose last label ends before this one begins. Overlapping
    windows' labels were drawn over each other (``reset_peer(ti…`` across ``postgres link
    flapping``)."""
    row_ends: list[float] = []
    rows = []
    for x, chars in starts:
        end = x + chars * LABEL_CHAR_W + 4
        row = next((i for i, last in enumerate(row_ends) if last <= x), len(row_ends))
        if row == len(row_ends):
            row_ends.append(end)
        else:
            row_ends[row] = end
        rows.append(row)
    return rows


def svg_chart(points: Sequence[Point], windows: list[Window], title: str, colour: str,
              duration: float, width: int = 1000, height: int = 130) -> str:
    left, right, top, bottom = 60, 10, 18, 20
    x_max = max(duration, max((p[0] for p in points), default=0.0), 1.0)
    plot_w = width - left - right

    def x(t: float) -> float:
        return left + plot_w * t / x_max

    labels = [escape(w.label[:LABEL_CHARS]) for w in windows]
    rows = label_rows([(x(w.start) + 2, len(w.label[:LABEL_CHARS])) for w in windows])
    # Rows of labels past the plot's first three lengthen the chart instead of crowding it.
    height += max(0, max(rows, default=0) - 2) * LABEL_ROW_H
    plot_h = height - top - bottom
    y_max = max((p[1] for p in points), default=0.0) or 1.0

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{left}" y="12" font-size="12" font-weight="600">{escape(title)}</text>']
    for n, window in enumerate(windows):
        x0, x1 = x(window.start), x(max(window.end, window.start + x_max / 200))
        label = escape(window.label)
        parts.append(f'<rect class="fault-window" data-label="{label}" x="{x0:.1f}" y="{top}" '
                     f'width="{x1 - x0:.1f}" height="{plot_h}" fill="{FAULT_COLOURS[n % len(FAULT_COLOURS)]}" '
                     f'opacity="0.6"><title>{label} ({window.start:.1f}s to {window.end:.1f}s)</title></rect>')
    for n, window in enumerate(windows):  # labels over every window, so none is shaded over
        parts.append(f'<text class="window-label" x="{x(window.start) + 2:.1f}" '
                     f'y="{top + LABEL_ROW_H * (rows[n] + 1)}" font-size="10" fill="#444">{labels[n]}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>')
    parts.append(f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{_fmt(y_max)}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>')
    for i in range(0, int(x_max) + 1, max(1, int(x_max) // 10 or 1)):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 5}" font-size="10" text-anchor="middle">{i}s</text>')
    if points:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        parts.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="1.6" points="{path}"/>')
    else:
        parts.append(f'<text x="{left + 10}" y="{top + plot_h / 2}" font-size="11" fill="#888">no samples</text>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    label: str


def _windows(sc: ScenarioResult) -> list[Window]:
    return [Window(s.applied_at, s.removed_at, s.description) for s in sc.steps
            if s.applied_at is not None and s.removed_at is not None and s.removed_at > s.applied_at]


def _ids(values: Sequence[object]) -> str:
    return f'<span class="ids">{escape(", ".join(str(v) for v in values))}</span>' if values else "-"


def _scenario_section(sc: ScenarioResult) -> str:
    series = sc.series or Series()
    duration = sc.duration_s or 1.0
    windows = _windows(sc)
    out = [f'<section class="scenario" id="scenario-{escape(sc.name)}">',
           f'<h2>{escape(sc.name)} <span class="{sc.verdict}">{sc.verdict.upper()}</span>'
           + (f' <small class="rate">{escape(sc.rate_said)} replays</small>' if sc.rate_said else "") + "</h2>",
           f"<p>{escape(sc.description)}" + (f" (incident: <b>{escape(sc.incident)}</b>)" if sc.incident else "")
           + "</p>"]
    if sc.reason:
        label = "skipped" if sc.verdict is Verdict.SKIPPED else "harness error"
        out.append(f"<pre>{label}: {escape(sc.reason)}</pre>")
    for key, title, colour in CHARTS:
        out.append(svg_chart(getattr(series, key), windows, title, colour, duration))
    for title, points in series.topology.items():
        out.append(svg_chart(points, windows, title, "#0f766e", duration))
    out.append("<h3>Checks</h3><table><tr><th>invariant</th><th>held</th><th>detail</th></tr>")
    for check in sc.checks:
        state = "na" if not check.applicable else "pass" if check.ok else "fail"
        held = {"na": "n/a", "pass": "yes", "fail": "NO"}[state]
        out.append(f'<tr class="check-{state}"><td>{escape(check.name)}</td><td class="{state}">'
                   f'{held}</td><td>{escape(check.detail)}</td></tr>')
    out.append("</table><h3>Fault steps</h3><table><tr><th>phase</th><th>step</th><th>applied</th><th>removed</th>"
               "<th>evidence</th></tr>")
    for step in sc.steps:
        applied = "-" if step.applied_at is None else f"{step.applied_at:.2f}s"
        removed = "-" if step.removed_at is None else f"{step.removed_at:.2f}s"
        out.append(f"<tr><td>{escape(step.phase)}</td><td>{escape(step.description)}</td>"
                   f"<td>{applied}</td><td>{removed}</td><td>{escape(step.evidence)}</td></tr>")
    out.append("</table>")
    if sc.ledger is not None:
        out += _ledger_section(sc.ledger)
    if sc.changes is not None:
        out += _changes_section(sc.changes)
    out += _load_section(sc.load)
    out += _checkpoint_section(sc.checkpoints)
    out += _resource_section(sc.resources, windows, duration)
    out += _failover_section(sc.failover_losses)
    if sc.loss_story is not None:
        story = sc.loss_story
        out.append(f"<h3>How record {story.record_id} was lost ({escape(story.hop)})</h3><pre class=\"story\">"
                   + escape("\n".join(story.events + ([f"... {story.more} more"] if story.more else []))) + "</pre>")
    if sc.log_excerpt and sc.verdict is not Verdict.PASS:
        out.append("<h3>Exporter log around the violations</h3><pre>"
                   + escape("\n".join(sc.log_excerpt[-30:])) + "</pre>")
    out.append("</section>")
    return "\n".join(out)


def _failover_section(losses: list[FailoverLoss]) -> list[str]:
    """Each failover of the run, what the servers said of it, and the lost records in its span."""
    if not losses:
        return []
    rows = "".join(
        f"<tr><td>{escape(x.server)}</td><td>{escape(x.step)}</td><td>{_at(x.applied_at_s)}..{_at(x.removed_at_s)}</td>"
        f"<td>{x.lost} of {x.lost_total}</td><td>{escape(', '.join(map(str, x.first_ids)))}</td>"
        f"<td>{escape(x.evidence)}</td></tr>" for x in losses)
    return ["<h3>Failovers and the losses in their span</h3><table><tr><th>server</th><th>step</th><th>window</th>"
            "<th>lost in span</th><th>first ids</th><th>what the servers said</th></tr>" + rows + "</table>"]


def _at(seconds: float | None) -> str:
    return "?" if seconds is None else f"t={seconds:.1f}s"


def _ledger_section(ledger: LedgerSummary) -> list[str]:
    out = ["<h3>Ledger</h3><table><tr>" + "".join(f"<th>{escape(k)}</th>" for k in ledger.counts)
           + "<th>duplicates</th><th>out of order</th><th>unexpected</th></tr><tr>"
           + "".join(f"<td>{v}</td>" for v in ledger.counts.values())
           + f"<td>{ledger.duplicates}</td><td>{ledger.order_inversions}</td><td>{ledger.unexpected}</td>"
           + "</tr></table>"]
    if ledger.duplicates_by_window:
        out.append("<h3>Duplicates by the fault window they follow</h3><table><tr><th>window</th>"
                   "<th>redeliveries</th></tr>" + "".join(f"<tr><td>{escape(w)}</td><td>{n}</td></tr>"
                                                          for w, n in ledger.duplicates_by_window.items())
                   + "</table>")
    if ledger.inversion_samples:
        out.append('<h3>Out of source order</h3><ul class="ids">'
                   + "".join(f"<li>{escape(x)}</li>" for x in ledger.inversion_samples) + "</ul>")
    if ledger.samples.get("lost"):
        out.append('<h3>Lost records</h3><table class="lost"><tr><th>record id</th><th>lost at hop</th></tr>')
        for record_id in ledger.samples["lost"]:
            hop = ledger.lost_hops.get(str(record_id), "?")
            out.append(f'<tr><td class="ids">{record_id}</td><td>{escape(hop)}</td></tr>')
        out.append("</table>")
    if ledger.samples.get("delivered_corrupted"):
        out.append(f"<h3>Corrupted records</h3><p>{_ids(ledger.samples['delivered_corrupted'])}</p>")
    if ledger.dead_letter_samples:
        rows = "".join(f'<tr><td class="ids">{escape(k)}</td><td>{escape(v)}</td></tr>'
                       for k, v in ledger.dead_letter_samples.items())
        out.append(f"<h3>Dead-lettered records</h3><table><tr><th>record id</th><th>reason</th></tr>{rows}</table>")
    if ledger.misrouted_samples:
        rows = "".join(f'<tr><td class="ids">{escape(k)}</td><td>{escape(v)}</td></tr>'
                       for k, v in ledger.misrouted_samples.items())
        out.append('<h3>Dead-lettered though deliverable</h3><table class="misrouted"><tr><th>record id</th>'
                   f"<th>why its reason does not hold</th></tr>{rows}</table>")
    out.append(f"<p>Dead letters checked against the sink: {ledger.letters_verified} hold, "
               f"{ledger.letters_trusted} taken on trust, {ledger.letters_undeclared} with a reason the target "
               "does not declare.</p>")
    if ledger.unexpected_samples:
        out.append(f"<h3>Unexpected records</h3><p>{_ids(ledger.unexpected_samples)}</p>")
    return out


def _changes_section(changes: ChangeSummary) -> list[str]:
    """The change workload judged per row: what was written and committed, each anomaly class's
    count, and the first rows' histories on both sides."""
    figures = {"written": changes.written, "committed": changes.committed, "rows": changes.rows,
               "transactions": changes.transactions, "key changes": changes.key_changes, "deletes": changes.deletes,
               "redelivered": changes.duplicates, "unknown outcome": changes.uncertain, **changes.counts}
    out = [f"<h3>Changes ({escape(changes.delivers.replace('_', ' '))})</h3><table><tr>"
           + "".join(f"<th>{escape(k)}</th>" for k in figures) + "</tr><tr>"
           + "".join(f"<td>{v}</td>" for v in figures.values()) + "</tr></table>"]
    for cls, rows in changes.samples.items():
        out.append(f"<h4>{escape(cls)}</h4><ul>" + "".join(f"<li><code>{escape(r)}</code></li>" for r in rows)
                   + "</ul>")
    if changes.unexpected_samples:
        out.append("<h4>Change events nobody committed</h4><ul>"
                   + "".join(f"<li>{escape(x)}</li>" for x in changes.unexpected_samples) + "</ul>")
    return out


def _load_section(loads: list[LoadStats]) -> list[str]:
    out = []
    for load in loads:
        out.append(f"<h3>Locust {escape(load.kind)} load: {load.users} users"
                   + (f" on {load.workers} workers" if load.workers else "")
                   + "</h3><table><tr><th>request</th><th>count</th><th>failures</th><th>req/s</th>"
                   "<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>")
        for row in load.requests:
            out.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in
                                        (row.name, row.requests, row.failures, row.rps, row.p50_ms, row.p95_ms,
                                         row.p99_ms)) + "</tr>")
        out.append("</table>")
    return out


def _checkpoint_section(points: list[CheckpointPoint]) -> list[str]:
    if not points:
        return []
    out = ["<h3>Checkpoint reconciliations</h3><table><tr><th>at</th><th>written</th><th>not yet settled</th>"
           "<th>still in buffer</th><th>corrupted</th><th>missing ids</th></tr>"]
    for p in points:
        out.append(f"<tr><td>{p.at:.1f}s</td><td>{p.written}</td><td>{p.missing}</td>"
                   f"<td>{p.in_flight}</td><td>{p.corrupted}</td><td>{_ids(p.missing_ids)}</td></tr>")
    out.append("</table>")
    return out


def _resource_section(resources: Resources | None, windows: list[Window], duration: float) -> list[str]:
    if resources is None or not resources.samples:
        return []
    samples = resources.samples
    out = ["<h3>Exporter resources</h3>",
           svg_chart([(s.t, s.rss_mib) for s in samples], windows, "exporter RSS (MiB)", "#0f766e", duration),
           svg_chart([(s.t, float(s.open_files)) for s in samples], windows, "exporter open files", "#b45309",
                     duration),
           "<table><tr><th>pid</th><th>quantity</th><th>start</th><th>end</th><th>per minute</th><th>leak</th></tr>"]
    for t in resources.trends:
        leak = '<td class="fail">LEAK</td>' if t.leak else '<td class="pass">no</td>'
        out.append(f"<tr><td>{t.pid}</td><td>{escape(t.quantity)}</td><td>{t.start}</td>"
                   f"<td>{t.end}</td><td>{t.slope_per_min:+}</td>{leak}</tr>")
    out.append("</table>")
    if resources.not_judged:
        out.append(f"<p>Not judged: {escape(resources.not_judged)}</p>")
    return out


def render(report: RunReport) -> str:
    rows = []
    ordered = failures_first(report.scenarios)
    for sc in ordered:
        ledger = sc.ledger or LedgerSummary()
        recovery = "-" if sc.recovery_s is None else f"{sc.recovery_s:.1f}s"
        rows.append(f'<tr><td><a href="#scenario-{escape(sc.name)}">{escape(sc.name)}</a></td>'
                    f'<td class="{sc.verdict}">{sc.verdict}</td><td>{ledger.count("lost")}</td>'
                    f'<td>{ledger.count("delivered_corrupted")}</td><td>{ledger.count("dead_lettered")}</td>'
                    f"<td>{ledger.duplicates}</td><td>{ledger.order_inversions}</td><td>{recovery}</td>"
                    f"<td>{sc.duration_s:.1f}s</td></tr>")
    verdict = str(report.verdict)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Faultline run {escape(report.run_id)}: {escape(verdict)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>Faultline run {escape(report.run_id)}: <span class="{escape(verdict)}">'
        f"{escape(verdict.upper())}</span></h1>",
        f"<p>Target <code>{escape(report.target)}</code>, backend <code>{escape(report.backend)}</code>, "
        f"{len(report.scenarios)} scenario(s), {report.duration_s:.1f}s.</p>",
        *([explore_report.failures_html(report.explore)] if report.explore is not None and report.explore.failures
          else []),
        _first_violations(ordered),
        '<table id="summary"><tr><th>scenario</th><th>verdict</th><th>lost</th><th>corrupted</th>'
        "<th>dead-lettered</th><th>duplicates</th><th>out of order</th><th>recovery</th><th>duration</th></tr>",
        *rows, "</table>",
        *([explore_report.html(report.explore)] if report.explore is not None else []),
        *(_section_or_error(sc) for sc in ordered),
        *(['<section id="report-errors"><h2>Report problems</h2><ul>'
           + "".join(f"<li>{escape(str(p))}</li>" for p in report.report_errors) + "</ul></section>"]
          if report.report_errors else []),
        "</body></html>",
    ])


def _first_violations(ordered: list[ScenarioResult]) -> str:
    """Above everything else: each scenario that did not pass, why, and a link to its section."""
    items = []
    for sc in ordered:
        if sc.verdict is Verdict.PASS:
            break
        why = "; ".join(f"{c.name}: {c.detail}" for c in sc.violations[:3]) or sc.reason or ""
        rate = f" ({sc.rate_said} replays)" if sc.rate_said else ""
        items.append(f'<li><a href="#scenario-{escape(sc.name)}">{escape(sc.name)}</a> '
                     f'<span class="{sc.verdict}">{sc.verdict}</span>{escape(rate)}: {escape(why[:600])}</li>')
    return f'<section id="first-violations"><h2>What did not pass</h2><ul>{"".join(items)}</ul></section>' \
        if items else ""


def _section_or_error(scenario: ScenarioResult) -> str:
    """One scenario's section; a section that cannot be drawn (a bug here) is replaced by the
    reason, and every other section is still drawn."""
    try:
        return _scenario_section(scenario)
    except Exception as exc:  # noqa: BLE001 - one broken section must not cost the whole report
        name = escape(scenario.name)
        return (f'<section id="scenario-{name}"><h2>{name}</h2><p class="error">This section could not be drawn: '
                f"{escape(f'{exc.__class__.__name__}: {exc}')}; report.json has everything.</p></section>")
