"""``EXPORTER_PROFILE_DIR``: each worker writes its cProfile statistics when it stops, also when
it stops with an exception (a profile of a crash is the one most wanted)."""

from __future__ import annotations

import dataclasses
import pstats
from pathlib import Path

import pytest

from exporter import pipeline
from exporter.config import Config, load


class BusyWorker:
    def __init__(self, _config: Config, _control: object) -> None:
        pass

    def run(self) -> None:
        sum(i * i for i in range(20_000))


class CrashingWorker(BusyWorker):
    def run(self) -> None:
        super().run()
        raise RuntimeError("the worker fell over")


def _functions(directory: Path, kind: str) -> set[str]:
    files = sorted(directory.glob(f"{kind}-*.prof"))
    assert len(files) == 1, files
    return {name for (_file, _line, name) in pstats.Stats(str(files[0])).stats}  # type: ignore[attr-defined]


def test_a_profiled_worker_writes_its_statistics_when_it_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(pipeline.WORKERS, "reader", BusyWorker)  # type: ignore[arg-type]
    monkeypatch.setitem(pipeline.WORKERS, "deliverer", CrashingWorker)  # type: ignore[arg-type]
    config = dataclasses.replace(Config(), profile_dir=str(tmp_path / "profiles"))
    pipeline._profiled("reader", config, None)  # type: ignore[arg-type]
    assert "run" in _functions(tmp_path / "profiles", "reader")
    with pytest.raises(RuntimeError, match="fell over"):
        pipeline._profiled("deliverer", config, None)  # type: ignore[arg-type]
    assert "run" in _functions(tmp_path / "profiles", "deliverer")


REQUIRED = {"EXPORTER_POSTGRES_DSN": "postgresql://x@127.0.0.1/x", "EXPORTER_REDIS_URL": "redis://127.0.0.1:1",
            "EXPORTER_KAFKA_BOOTSTRAP": "127.0.0.1:1"}


def test_the_profile_directory_is_a_setting() -> None:
    assert load(environ={**REQUIRED, "EXPORTER_PROFILE_DIR": "/tmp/p"}).profile_dir == "/tmp/p"
    assert load(environ=REQUIRED).profile_dir == ""
