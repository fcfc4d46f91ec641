"""What every faultline command shares: exit codes, option types that refuse bad input, and
the group that turns any FaultlineError into one line and exit 2."""

from __future__ import annotations

import math
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape

from harness.cli.output import console
from harness.errors import FaultlineError, HarnessError
from harness.infra.lifecycle import TerminatedBySignal, ignore_stopping_signals, unwind_on, unwinding
from harness.model.plugins import load_target

EXIT_OK, EXIT_VIOLATION, EXIT_HARNESS = 0, 1, 2



class FiniteFloat(click.ParamType):
    """A float within [low, high]: NaN and infinities are refused (a NaN compares false with any
    bound, so click's FloatRange lets it through)."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r} is not a finite number within [{self.low}, {self.high}]", param, ctx)
        return number


class WritableDir(click.Path):
    """A directory the run may write its reports into: made now (with its parents) and probed
    with a file, so that "/proc/nope" or a read-only mount is refused before any server starts,
    not found out by the report writer after an hour's soak."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=str)

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        path = Path(os.fsdecode(super().convert(value, param, ctx)))  # type: ignore[arg-type]
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".faultline-probe-"):
                pass
        except OSError as exc:
            self.fail(f"{str(path)!r} cannot be written to: {exc.strerror or exc}", param, ctx)
        return str(path.resolve())  # reports name their files absolutely, wherever they are read from


class FaultlineGroup(click.Group):
    """Any FaultlineError becomes a one-line message and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FaultlineError as exc:
            # Escaped (a message may hold [incident] or [metrics]: text, not markup) and unwrapped:
            # one line, file:line:field first, whatever the terminal's width.
            console.print(f"[bold red]faultline: error:[/] {escape(str(exc))}", soft_wrap=True)
            sys.exit(EXIT_HARNESS)
        except KeyboardInterrupt as exc:
            # Ctrl-C exits 130; SIGTERM and SIGHUP exit 128 + their number, as a shell expects.
            signum = exc.signum if isinstance(exc, TerminatedBySignal) else signal.SIGINT
            ignore_stopping_signals()  # the exit status must be 128 + signum, whatever comes after
            console.print(f"[yellow]faultline: {signal.Signals(signum).name}; everything started was stopped[/]")
            sys.exit(128 + signum)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - a harness bug must exit 2, never 1 (which means a violation)
            console.print_exception()
            console.print("[bold red]faultline: internal error[/] (exit 2: the harness failed, not the exporter)")
            sys.exit(EXIT_HARNESS)


@contextmanager
def graceful_interrupt(what: str) -> Iterator[threading.Event]:
    """The first Ctrl-C sets the event (the run heals, reconciles and reports what it has); the
    second raises KeyboardInterrupt at once, which still stops everything started on the way out."""
    interrupt = threading.Event()

    def first_ctrl_c(_signum: int, _frame: object) -> None:
        console.print(f"[yellow]interrupted: {what} (Ctrl-C again to stop at once)[/]")
        interrupt.set()
        unwind_on(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, first_ctrl_c)
    try:
        yield interrupt
    finally:
        if not unwinding():  # once stopping at once, a later Ctrl-C must not cut the teardown short
            signal.signal(signal.SIGINT, previous)


def pairs(items: tuple[str, ...], option: str) -> tuple[tuple[str, str], ...]:
    """KEY=VALUE options as pairs; anything else is bad input (exit 2, naming the option)."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: write KEY=VALUE", param_hint=option)
        pairs.append((key.strip(), value))
    return tuple(pairs)


def defect_env(target_path: str | None, defect: str | None) -> dict[str, str]:
    """The exporter environment that switches a seeded defect on (through the target's defect_env)."""
    from pathlib import Path

    from harness.model.target import BUNDLED

    if defect is None:
        return {}
    target = load_target(Path(target_path) if target_path else BUNDLED)
    if defect not in target.defects:
        raise HarnessError(f"--defect {defect!r}: target {target.name} declares {', '.join(target.defects) or 'none'}")
    return {target.defect_env: defect}
