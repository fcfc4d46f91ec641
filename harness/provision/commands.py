"""Running installer commands with their output kept in a log, not thrown away."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness.errors import SetupError

_apt_updated = False


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="backslashreplace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_logged(cmd: list[str], log: Path, *, what: str, env: dict[str, str] | None = None,
               cwd: Path | None = None, timeout: float = 900) -> None:
    """Run ``cmd``, appending its output to ``log``; raise SetupError naming ``what`` on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            raise SetupError(f"{what}: {cmd[0]} is not installed ({exc})") from exc
        except subprocess.TimeoutExpired as exc:
            raise SetupError(f"{what}: {cmd[0]} took longer than {timeout:.0f}s; see {log}") from exc
    if proc.returncode != 0:
        raise SetupError(
            f"{what}: `{' '.join(cmd)}` exited with {proc.returncode}; last lines of {log}:\n"
            f"{tail(log)}"
        )


def can_apt_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(packages: list[str], log: Path, *, what: str) -> None:
    """Install Debian packages (root only); runs ``apt-get update`` once per process."""
    global _apt_updated
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        run_logged(["apt-get", "update"], log, what=what, env=env)
        _apt_updated = True
    run_logged(["apt-get", "install", "-y", "--no-install-recommends", *packages], log,
               what=what, env=env)


def version_of(cmd: list[str]) -> str:
    """First line a ``--version`` style command prints, or ``unknown``."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc.__class__.__name__})"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "unknown"
