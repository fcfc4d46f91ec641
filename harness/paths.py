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
    """The checkout this harness runs from (reports/ lives there)."""
    return Path(__file__).resolve().parents[1]


def reports_dir() -> Path:
    override = os.environ.get("FAULTLINE_REPORTS_DIR")
    return Path(override).resolve() if override else project_root() / "reports"
