"""Faults below the exporter's process, in its file system: one call failing with an errno
(``file_error``), and a crash that keeps only what was fsynced (``crash_losing_unsynced``).

Both put the directory on the faulty file system (harness.infra.faultyfs) before the exporter
starts, so they work for any target, a static binary or a JVM included. Why not libfiu, which
the issue names: its POSIX preload fails a function for the whole process (every ``write``,
sockets and logs included), cannot be aimed at a path, and reaches only what is preloadable;
a file system under the directory is aimed by path and reaches every process that writes there.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.infra.faultyfs.control import FileRule
from harness.infra.faultyfs.mount import FaultyMount
from harness.model.capabilities import Need
from harness.provision.components import require
from harness.report.journal import FaultReach
from harness.steps.base import STRICT, Problem, StepKind, World
from harness.steps.disk import DIRECTORIES, directory
from harness.steps.protocol import SAMPLES_KEPT, TriggeredFault
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

Operation = Literal["open", "write", "fsync", "close", "rename", "link", "unlink", "truncate", "mkdir"]
Errno = Literal["EIO", "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EXDEV", "EMFILE", "EBUSY", "EINTR"]
Directory = Literal["export_dir", "file_sink"]
# What each call plausibly fails with on a real disk, for explore's draws.
DRAWN_ERRNOS: dict[str, tuple[Errno, ...]] = {
    "write": ("EIO", "ENOSPC", "EDQUOT"), "fsync": ("EIO", "ENOSPC"), "rename": ("EIO", "EXDEV", "ENOSPC"),
    "open": ("EIO", "EACCES", "EMFILE"), "close": ("EIO", "EDQUOT")}
PathGlob = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00/][^\x00]*$")]


def faulty_mount(run: StepContext, name: str) -> FaultyMount:
    """The run's faulty file system on ``name``, mounted the first time (before the exporter starts)."""
    if name not in run.faulty_mounts:
        require("fuse")
        place = directory(run, name)
        # The faults are the exporter's: the harness's own reads (the judge, a pause's watch) pass.
        run.faulty_mounts[name] = FaultyMount(place, run.ctx.workdir / f".faultyfs-{name}", exempt=os.getpid()).mount()
    return run.faulty_mounts[name]


def release_faulty_mounts(run: StepContext) -> list[str]:
    """Unmount every faulty file system of the run (cleanup, after the exporter stopped)."""
    problems = []
    while run.faulty_mounts:
        name, mount = run.faulty_mounts.popitem()
        try:
            mount.unmount()
        except Exception as exc:  # noqa: BLE001 - each one is reported; the others are still unmounted
            problems.append(f"{name}: {exc}")
    return problems


@step_kind
@dataclass(frozen=True, config=STRICT, kw_only=True)
class FileError(TriggeredFault):
    """One call of the exporter's on a directory of its (``export_dir`` or the ``file_sink``'s)
    fails with ``errno``: ``operation`` on paths matching ``path``, from the ``nth`` on. A failed
    ``fsync`` also forgets the file's unsynced data unless ``forgets`` is false (Linux drops the
    dirty pages of a failed writeback and its next fsync succeeds)."""

    kind_name: ClassVar[str] = "file_error"
    invites: ClassVar[tuple[str, ...]] = ("export",)  # an export job writes files too
    directory: Directory = "file_sink"
    operation: Operation = "fsync"
    errno: Errno = "EIO"
    path: PathGlob = "*"
    forgets: bool = True

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> FileError:
        # A sink fsyncs once a batch and an export a few times a job: an early call, most often
        # the fsync that confirms, and now and then every call while in force.
        where: Directory = rng.choice(("export_dir", "file_sink"))
        operations: tuple[Operation, ...] = ("write", "fsync", "fsync", "fsync", "open", "close")
        operation = rng.choice(operations + (("rename",) if where == "export_dir" else ()))
        # A window of a second or two holds one or two fsyncs of the sink: from the second on
        # would mostly meet nothing.
        nth = 1 if operation == "fsync" and where == "file_sink" else rng.choice((1, 1, 2))
        return cls(directory=where, operation=operation, errno=rng.choice(DRAWN_ERRNOS[operation]),
                   nth=nth, times=rng.choice((1, 1, 3, 0)), seed=rng.randrange(2**31))

    def describe(self) -> str:
        forgets = ", forgetting the unsynced data" if self.operation == "fsync" and self.forgets else ""
        return (f"{self.operation} on {self.directory}/{self.path} fails with {self.errno}{forgets} "
                f"({self.how_often()})")

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.root(), Need.device("fuse"), Need.sink(self.directory)})

    def check(self) -> Problem | None:
        if self.directory not in DIRECTORIES:
            return Problem("directory", f"directory must be one of {DIRECTORIES}")
        return None

    def prepare(self, run: StepContext) -> None:
        faulty_mount(run, self.directory)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        mount = run.faulty_mounts[self.directory]
        number = mount.add_rule(FileRule(0, self.operation, self.errno, self.path, self.nth, self.times,
                                         self.probability, self.seed, self.forgets))
        record.evidence = f"rule {number} on the file system under {mount.directory}: {self.describe()}"
        return number

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        mount = run.faulty_mounts[self.directory]
        matched, failed = mount.remove_rule(handle)
        calls = mount.failures(handle)
        record.evidence += f"; failed {failed} of {matched} matching call(s)"
        record.result = {"matched": matched, "injected": failed, "injections": calls[:SAMPLES_KEPT]}
        run.observed.reaches.append(FaultReach(record.description, f"files in {self.directory}", matched, failed,
                                               True))


@step_kind
@dataclass(frozen=True, config=STRICT)
class CrashLosingUnsynced(StepKind):
    """The machine under the exporter crashes: the exporter is killed (SIGKILL) and its
    directories keep only what was fsynced (written and not synced is forgotten, as lazyfs does);
    the exporter starts again when the step ends. Whatever it had acknowledged must still be in
    its files."""

    kind_name: ClassVar[str] = "crash_losing_unsynced"
    takes_exporter_away: ClassVar[bool] = True
    directory: Literal["export_dir", "file_sink", "both"] = "both"

    @property
    def directories(self) -> tuple[Directory, ...]:
        return ("file_sink", "export_dir") if self.directory == "both" else (self.directory,)

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> CrashLosingUnsynced:
        return cls(directory=rng.choice(("file_sink", "both")))

    def describe(self) -> str:
        return f"crash: exporter killed, {' and '.join(self.directories)} keep only what was fsynced"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.root(), Need.device("fuse"), *(Need.sink(name) for name in self.directories)})

    def prepare(self, run: StepContext) -> None:
        for name in self.directories:
            faulty_mount(run, name)

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        exporter = run.live_exporter()
        run.planned_kills += 1
        exporter.kill()
        forgotten: dict[str, int] = {}
        for name in self.directories:
            lost = run.faulty_mounts[name].forget_unsynced()
            forgotten.update({f"{name}/{path}": size for path, size in lost.items()})
        per_file = ", ".join(f"{path}: {size}" for path, size in sorted(forgotten.items()))
        record.evidence = (f"exporter running={exporter.running()}; {sum(forgotten.values())} unsynced byte(s) "
                           f"forgotten" + (f" ({per_file})" if per_file else ""))
        record.result = {"forgotten_bytes": forgotten}

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        run.restart_exporter_beside()

