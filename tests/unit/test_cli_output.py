"""What the CLI prints where no terminal reads it (a CI log, a pipe): complete and plain. The
verdict table was cut to 80 columns there ("scena…", "verdi…" on every row of the gate's output)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rich.console import Console

from harness.catalogue.registry import discover
from harness.cli import output
from harness.report.result import ScenarioResult, Verdict

LONG = "a_scenario_whose_name_is_long_enough_to_be_cut_in_eighty_columns_of_a_ci_log"


def _listed(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_off_a_terminal_every_scenario_name_is_printed_whole_and_without_colours() -> None:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    listed = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "…" not in listed.stdout and "\x1b[" not in listed.stdout
    assert all(name in listed.stdout for name in discover())


def test_a_narrow_columns_folds_names_instead_of_cutting_them() -> None:
    listed = _listed({"COLUMNS": "60"})
    assert "…" not in listed
    assert max(len(line) for line in listed.splitlines()) <= 60


@pytest.mark.parametrize("columns", [None, "50"])
def test_the_verdict_table_keeps_whole_names(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    console = output.make_console()
    assert not console.is_terminal  # pytest captures: as in a CI log
    rendered = Console(width=console.width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    result = ScenarioResult(LONG, "d", None, verdict=Verdict.FAIL)
    rendered.print(output.results_table([result]))
    text = rendered.export_text()
    rendered.file.close()
    assert "…" not in text
    first_column = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))
    assert first_column == LONG  # folded over lines when narrow, never cut
    if columns is None:
        assert LONG in text  # as wide as its content: on one line
