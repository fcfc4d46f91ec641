"""Faults on the exporter's disks: a small tmpfs that fills up, a directory that refuses writes.

Both need root (mount, chattr). What they mount or flag is recorded on the run
(``run.mounted``, ``run.immutable``) so that cleanup undoes it whatever happened.
"""

from __future__ import annotations

import errno
import random
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.reaper import RECORDER
from harness.model.capabilities import Need
from harness.steps.base import STRICT, Fraction, Name, Problem, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

DIRECTORIES = ("export_dir", "file_sink")
FILLER = ".faultline-filler"


def run_command(command: list[str], what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"cannot {what}: {proc.stderr.strip() or proc.returncode}")


def directory(run: StepContext, name: str) -> Path:
    """One of the exporter's directories, as its target definition names it."""
    path = Path(run.sink("export_dir")) if name == "export_dir" else Path(run.sink("file_sink")).parent
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_immutable(run: StepContext, path: Path, on: bool) -> str:
    # -R: the files already there refuse appends too, not only new files in the directory.
    run_command(["chattr", "-R", "+i" if on else "-i", str(path)],
                f"{'set' if on else 'clear'} the immutable flag on {path}")
    RECORDER.immutable(path, add=on)  # a killed run's flag is cleared by `faultline clean`
    if on:
        run.immutable.append(path)
    elif path in run.immutable:
        run.immutable.remove(path)
    return f"{path} immutable={on}"


def release_disks(run: StepContext) -> None:
    """Clear every immutable flag and unmount every tmpfs this run made (cleanup, always)."""
    for path in list(run.immutable):
        set_immutable(run, path, False)
    while run.mounted:
        path = run.mounted.pop()
        run_command(["umount", "-l", str(path)], f"unmount {path}")
        RECORDER.mount(path, add=False)


def _bad_directory(name: str) -> Problem | None:
    return None if name in DIRECTORIES else Problem("directory", f"directory must be one of {DIRECTORIES}, "
                                                                 f"not {name!r}")


@step_kind
@dataclass(frozen=True, config=STRICT)
class DiskFull(StepKind):
    """A directory of the exporter's (``export_dir`` or the ``file_sink``'s) lives on a tmpfs of
    ``size_kib`` for the whole scenario (mounted before the exporter starts). The step fills it
    with a filler file until ``fill`` of it is in use (0: the exporter's own writes fill it);
    when the step ends the filler goes and the tmpfs grows: the space is freed, the data stays."""

    kind_name: ClassVar[str] = "disk_full"
    invites: ClassVar[tuple[str, ...]] = ("export",)  # an export job meets the limit
    size_kib: Annotated[int, Field(ge=1, le=16 * 1024 * 1024)] = 128
    directory: Name = "export_dir"
    fill: Fraction = 0.0

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> DiskFull:
        # The export directory only: explore puts an export job in every run that has one. Disks
        # fill up before anyone looks: mostly one already nearly full, so the job meets the limit.
        return cls(size_kib=rng.choice((64, 128, 512)), directory="export_dir",
                   fill=rng.choice((0.0, 0.9, 0.95, 0.98)))

    def describe(self) -> str:
        return f"{self.directory} disk of {self.size_kib} KiB" + (f" filled to {self.fill:.0%}" if self.fill else
                                                                 " (filling up)")

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.root(), Need.sink(self.directory)})

    def knobs_needed(self) -> dict[str, str]:
        return {"disk_usage_threshold": "1.0"}  # the full disk is the fault, not the guard's refusal

    def check(self) -> Problem | None:
        return _bad_directory(self.directory)

    def prepare(self, run: StepContext) -> None:
        """Before the exporter starts: the directory goes on its tmpfs."""
        path = directory(run, self.directory)
        if path not in run.mounted:
            RECORDER.mount(path)  # recorded first: a kill between the two still leaves a trace
            run_command(["mount", "-t", "tmpfs", "-o", f"size={self.size_kib}k", "tmpfs", str(path)],
                        f"mount a {self.size_kib} KiB tmpfs on {path} (needs root)")
            run.mounted.append(path)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        path = directory(run, self.directory)
        run_command(["mount", "-o", f"remount,size={self.size_kib}k", str(path)], f"size the tmpfs on {path}")
        usage = shutil.disk_usage(path)
        record.evidence = f"tmpfs of {self.size_kib} KiB on {path}, {usage.used} bytes used"
        want = int(self.fill * usage.total) - usage.used
        if want > 0:
            filler = path / FILLER
            with filler.open("wb") as out:
                try:
                    out.write(b"\0" * want)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
            record.evidence += f"; filler of {filler.stat().st_size} bytes; {shutil.disk_usage(path).free} bytes free"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        path = directory(run, self.directory)
        (path / FILLER).unlink(missing_ok=True)
        run_command(["mount", "-o", "remount,size=64m", str(path)], f"grow the tmpfs on {path}")


@step_kind
@dataclass(frozen=True, config=STRICT)
class ReadOnlyDir(StepKind):
    """Writes into a directory of the exporter's are refused (immutable attribute: even root gets EPERM)."""

    kind_name: ClassVar[str] = "read_only_dir"
    invites: ClassVar[tuple[str, ...]] = ("export",)
    directory: Name = "export_dir"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> ReadOnlyDir:
        return cls(directory="export_dir")

    def describe(self) -> str:
        return f"{self.directory} refuses writes (permission denied)"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.root(), Need.sink(self.directory)})

    def check(self) -> Problem | None:
        return _bad_directory(self.directory)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        record.evidence = set_immutable(run, directory(run, self.directory), True)

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        set_immutable(run, directory(run, self.directory), False)
