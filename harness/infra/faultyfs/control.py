"""What the harness and the file system process say to each other, through three files in the
mount's state directory (no socket to leak, and a killed harness leaves them readable):

- ``control.json``, written by the harness, atomically: the rules in force, how many times the
  unsynced data was to be dropped, and a generation that grows with every write;
- ``applied.json``, written by the file system once it acts on a generation: what each rule met
  and answered, and what each drop threw away (the harness waits for it: a rule is in force, or a
  drop done, only when the file system says so);
- ``reaches.jsonl``, appended by the file system: one line per call it failed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The calls a rule can fail, by what the exporter sees: ``open`` covers creating, ``close`` is the
# flush a close makes (an unchecked close is an incident family of its own), ``fsync`` covers a
# directory's too.
OPERATIONS = ("open", "write", "fsync", "close", "rename", "link", "unlink", "truncate", "mkdir")
ERRNOS = ("EIO", "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EXDEV", "EMFILE", "EBUSY", "EINTR")


@dataclass(frozen=True)
class FileRule:
    """Fail ``operation`` on paths matching ``path`` (a glob on the file's name, or with a slash
    on the path inside the mount) with
    ``errno``, from the ``nth`` matching call on, ``times`` times (0: every one), each with
    ``probability`` from ``seed``. A failed fsync also forgets the file's unsynced data when
    ``forgets`` (what Linux does since 4.13: the error is reported once, the dirty pages are
    dropped, and the next fsync succeeds; PostgreSQL's "fsyncgate")."""

    number: int
    operation: str
    errno: str
    path: str = "*"
    nth: int = 1
    times: int = 1
    probability: float = 1.0
    seed: int = 1
    forgets: bool = True


@dataclass
class Control:
    generation: int = 0
    rules: list[FileRule] = field(default_factory=list)
    drops: int = 0  # how many times the unsynced data was to be forgotten so far


@dataclass
class Applied:
    generation: int = -1
    counts: dict[str, list[int]] = field(default_factory=dict)  # rule number -> [matched, fired]
    dropped: list[dict[str, Any]] = field(default_factory=list)  # per drop: path -> bytes forgotten
    drops: int = 0


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def write_control(state: Path, control: Control) -> None:
    write_atomically(state / "control.json", asdict(control))


def read_control(state: Path) -> Control:
    raw = json.loads((state / "control.json").read_text())
    return Control(raw["generation"], [FileRule(**rule) for rule in raw["rules"]], raw["drops"])


def write_applied(state: Path, applied: Applied) -> None:
    write_atomically(state / "applied.json", asdict(applied))


def read_applied(state: Path) -> Applied:
    try:
        raw = json.loads((state / "applied.json").read_text())
    except FileNotFoundError:
        return Applied()
    return Applied(raw["generation"], raw["counts"], raw["dropped"], raw["drops"])
