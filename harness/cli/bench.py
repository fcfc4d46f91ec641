"""``faultline bench NAME``: runs ``bench/NAME.py`` and writes ``reports/bench/NAME.json``.

A benchmark module defines ``run() -> dict`` returning its figures; this runner adds the
machine it ran on and when, so figures from different machines are never compared blind.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
from pathlib import Path
from typing import Any

import psutil

from harness.errors import HarnessError
from harness.paths import project_root, reports_dir


def available() -> list[str]:
    return sorted(p.stem for p in (project_root() / "bench").glob("*.py") if not p.stem.startswith("_"))


def machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def run_benchmark(name: str, out: str | None = None) -> tuple[dict[str, Any], Path]:
    path = project_root() / "bench" / f"{name}.py"
    if not path.exists():
        raise HarnessError(f"no benchmark {name!r}; available: {', '.join(available()) or 'none'}")
    spec = importlib.util.spec_from_file_location(f"faultline_bench_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.run()
    result = {"benchmark": name, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": machine(), **figures}
    target = Path(out) if out else reports_dir() / "bench"
    target.mkdir(parents=True, exist_ok=True)
    written = target / f"{name}.json"
    written.write_text(json.dumps(result, indent=2) + "\n")
    return result, written
