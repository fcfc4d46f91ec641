"""Where Faultline keeps its cache of server binaries and its run directories."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "FAULTLINE_CACHE_DIR"


def cache_dir() -> Path:
    """Per-user cache of provisioned servers; ``FAULTLINE_CACHE_DIR`` overrides it."""
    override = os.environ.get(CACHE_ENV)
    path = Path(override) if override else Path(platformdirs.user_cache_dir("faultline"))
    return path.expanduser().resolve()


def project_root() -> Path:
    """The checkout this harness runs from; installed from a wheel, the directory that holds the
    packages (site-packages): use ``in_checkout`` before looking for a checkout's files there."""
    return Path(__file__).resolve().parents[1]


def in_checkout() -> bool:
    """Whether this harness runs from Faultline's own checkout (not from an installed wheel)."""
    return (project_root() / "pyproject.toml").is_file() and (project_root() / "harness").is_dir()


def shipped_dir() -> Path:
    """What the wheel carries beside the code, found the same with or without a checkout: the
    target definitions (``targets/``) and incident files (``incidents/``). In the checkout these
    are symbolic links to the top-level directories; the wheel holds copies."""
    return Path(__file__).resolve().parent / "shipped"


def reports_dir() -> Path:
    """``FAULTLINE_REPORTS_DIR``, else ``reports/`` of the checkout, else of the current directory
    (installed from a wheel: a team's own repository, never site-packages)."""
    override = os.environ.get("FAULTLINE_REPORTS_DIR")
    if override:
        return Path(override).resolve()
    return (project_root() if in_checkout() else Path.cwd()) / "reports"
