"""Explore's coverage and failures as summary.md lines and a report.html section: what the budget
exercised (step kinds, overlapping pairs, actions inside faults, signatures) and what it never
touched."""

from __future__ import annotations

from html import escape

from harness.report.result import ExploreSummary

TOP = 15


def failure_lines(found: ExploreSummary) -> list[str]:
    """One line per failure: its run, violated checks, kinds, rate, file and replay command."""
    return [f"- **run {f.run}** violated {', '.join(f.violated)} with {', '.join(f.step_kinds)}"
            + (f" (as run {f.same_as})" if f.same_as else "") + (f"; {f.rate_said}" if f.rate_said else "")
            + f": `{f.minimal or f.amplified or f.incident}`; replay: `{f.replay}`" for f in found.failures]


def markdown(found: ExploreSummary) -> list[str]:
    lines = ["", "## Explore", "",
             f"Seed {found.seed}: {found.runs} runs in {found.seconds:.0f}s ({found.runs_per_hour:.0f}/hour), "
             f"{len(found.signatures)} distinct signatures, {found.mutated} runs mutated from the corpus, "
             f"{found.harness_errors} harness error(s), {len(found.failures)} failure(s).", ""]
    lines += failure_lines(found)
    for title, table in (("step kind", found.kinds), ("overlapping faults", found.overlaps),
                         ("action inside fault", found.inside), ("signature", found.signatures)):
        lines += ["", f"| {title} | runs |", "| --- | --- |"]
        shown = list(table.items()) if title == "step kind" else list(table.items())[:TOP]  # every kind: coverage
        lines += [f"| {name.replace('|', '/')} | {n} |" for name, n in shown] or ["| (none) | 0 |"]
    if found.never_drawn:
        lines += ["", "Never drawn: " + "; ".join(f"`{k}` ({v})" for k, v in found.never_drawn.items())]
    if found.distinct_over_time:
        lines += ["", "Distinct signatures over the runs: "
                  + ", ".join(f"run {run}: {n}" for run, n in found.distinct_over_time)]
    return lines


def _failure_items(found: ExploreSummary) -> str:
    return "".join(
        f"<li>run {f.run}: {escape(', '.join(f.violated))} with {escape(', '.join(f.step_kinds))}"
        + (f" <strong>{escape(f.rate_said)}</strong>" if f.rate_said else "")
        + f": <code>{escape(f.minimal or f.amplified or f.incident)}</code>; "
        f"replay <code>{escape(f.replay)}</code></li>"
        for f in found.failures)


def failures_html(found: ExploreSummary) -> str:
    """The failures alone, for the top of report.html: each with its violated checks and the
    command that replays it, before any table of the runs that held."""
    return f'<section id="explore-failures"><h2>Explore failures</h2><ul>{_failure_items(found)}</ul></section>'


def html(found: ExploreSummary) -> str:
    def table(title: str, rows: dict[str, int]) -> str:
        shown = list(rows.items()) if title == "step kind" else list(rows.items())[:TOP]
        body = "".join(f"<tr><td>{escape(k)}</td><td>{n}</td></tr>" for k, n in shown)
        return f"<h3>{escape(title)}</h3><table><tr><th>{escape(title)}</th><th>runs</th></tr>{body}</table>"

    failures = _failure_items(found)
    never = "".join(f"<li><code>{escape(k)}</code>: {escape(v)}</li>" for k, v in found.never_drawn.items())
    return "".join([
        '<section id="explore"><h2>Explore</h2>',
        f"<p>Seed {found.seed}: {found.runs} runs in {found.seconds:.0f}s ({found.runs_per_hour:.0f}/hour), "
        f"{len(found.signatures)} distinct signatures, {found.mutated} mutated from the corpus, "
        f"{found.harness_errors} harness error(s).</p>",
        f"<h3>Failures</h3><ul>{failures or '<li>none</li>'}</ul>",
        table("step kind", found.kinds), table("overlapping faults", found.overlaps),
        table("action inside fault", found.inside), table("signature", found.signatures),
        f"<h3>Never drawn</h3><ul>{never or '<li>none</li>'}</ul></section>"])
