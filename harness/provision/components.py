"""The servers Faultline needs, each able to say where it is and to install itself.

Lookup order for every component: an explicit environment variable, then what the machine
already has (PATH, Debian's locations), then Faultline's own cache. Installing writes only to
the cache (or, as root, through apt-get); ``--check`` never installs.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import SetupError
from harness.paths import cache_dir
from harness.provision.base import Component, Installed, Log, cache_lock, maven, setup_log, staged
from harness.provision.commands import can_apt_install, run_logged, version_of
from harness.provision.debezium_server import DebeziumServer
from harness.provision.wallclock import Wallclock

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
SLF4J_VERSION = "1.7.36"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
TOXIPROXY_VERSION = "v2.12.0"
DEBEZIUM_VERSION = "3.7.0.Final"  # the first release with the fix of debezium/dbz#1554


class Postgres(Component):
    name = "postgres"
    debian_packages = ["postgresql"]

    def locate(self) -> Installed | None:
        on_path = shutil.which("postgres")
        candidates: list[tuple[str, str]] = []
        if on_path and shutil.which("initdb"):
            candidates.append((str(Path(on_path).resolve().parent), "PATH"))
        for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                             key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0),
                             reverse=True):
            candidates.append((bindir, "debian"))
        for bindir, source in candidates:
            if os.access(Path(bindir) / "postgres", os.X_OK) and (Path(bindir) / "initdb").exists():
                version = version_of([str(Path(bindir) / "postgres"), "--version"])
                return Installed(self.name, bindir, version, source)
        return None

    def install(self, log: Log) -> Installed:
        # Debian's postinst would create and start a "main" cluster we never use; say no first.
        conf = Path("/etc/postgresql-common/createcluster.d")
        if can_apt_install():
            conf.mkdir(parents=True, exist_ok=True)
            (conf / "faultline.conf").write_text("create_main_cluster = false\n")
        return self._install_debian(log)

    def how_to_install(self) -> str:
        return "install PostgreSQL (Debian: `apt-get install postgresql`) or put postgres/initdb on PATH"


class Redis(Component):
    name = "redis"
    debian_packages = ["redis-server"]

    def locate(self) -> Installed | None:
        for path, source in ((shutil.which("redis-server"), "PATH"),
                             ("/usr/bin/redis-server", "debian")):
            if path and os.access(path, os.X_OK):
                return Installed(self.name, path, version_of([path, "--version"]), source)
        return None

    def install(self, log: Log) -> Installed:
        return self._install_debian(log)

    def how_to_install(self) -> str:
        return "install Redis (Debian: `apt-get install redis-server`) or put redis-server on PATH"


class Java(Component):
    name = "java"
    debian_packages = ["default-jre-headless"]

    def locate(self) -> Installed | None:
        java_home = os.environ.get("JAVA_HOME")
        candidates = [(str(Path(java_home) / "bin" / "java"), "JAVA_HOME")] if java_home else []
        candidates.append((shutil.which("java") or "", "PATH"))
        for path, source in candidates:
            if path and os.access(path, os.X_OK):
                return Installed(self.name, path, version_of([path, "-version"]), source)
        return None

    def install(self, log: Log) -> Installed:
        return self._install_debian(log)

    def how_to_install(self) -> str:
        return "install a Java runtime 11 or newer (Debian: `apt-get install default-jre-headless`)"


Coordinate = tuple[str, str, str]  # Maven group, artifact, version


def _pom(name: str, why: str, dependencies: list[Coordinate], alone: tuple[Coordinate, ...] = ()) -> str:
    """A POM whose runtime dependencies are what a component needs (``mvn dependency:copy-dependencies``);
    ``alone``: jars wanted without their own dependencies (the rest already brings what they use)."""
    none = """
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"""
    deps = "".join(f"""
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>{none if (group, artifact, version) in alone else ""}
    </dependency>""" for group, artifact, version in [*dependencies, *alone])
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.faultline</groupId>
  <artifactId>{name}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <!-- Generated by `faultline setup`: {why} -->
  <dependencies>{deps}
  </dependencies>
</project>
"""


# The jars bring no logging binding: without one a JVM's log is silently empty.
_LOGGING: Coordinate = ("org.slf4j", "slf4j-reload4j", SLF4J_VERSION)


class Kafka(Component):
    """The broker's jars; ``path`` is the directory holding them (``KAFKA_HOME/libs``)."""

    name = "kafka"

    def _cached(self) -> Path:
        return cache_dir() / f"kafka-{KAFKA_VERSION}"

    def locate(self) -> Installed | None:
        home = os.environ.get("KAFKA_HOME")
        if home:
            libs = Path(home) / "libs"
            jars = sorted(libs.glob("kafka_*.jar"))
            if not jars:
                return None  # check_all/require name KAFKA_HOME in the error
            version = re.sub(r"^kafka_[\d.]+-", "", jars[0].stem)
            return Installed(self.name, str(libs), version, "KAFKA_HOME")
        libs = self._cached() / "libs"
        # A cache from before the quorum command was fetched lacks it: installed again.
        if (self._cached() / ".complete").exists() and (libs / f"kafka-tools-{KAFKA_VERSION}.jar").exists():
            return Installed(self.name, str(libs), KAFKA_VERSION, "cache")
        return None

    def install(self, log: Log) -> Installed:
        if os.environ.get("KAFKA_HOME"):
            raise SetupError(f"KAFKA_HOME={os.environ['KAFKA_HOME']} has no libs/kafka_*.jar; "
                             "point it at an unpacked Apache Kafka or unset it")
        log(f"resolving Kafka {KAFKA_VERSION} and its dependencies with Maven")
        # kafka-tools: the quorum command that adds brokers 2 and 3 as controllers (a failover's
        # cluster), on the broker's own class path.
        pom = _pom("kafka-broker-runtime", "the broker and everything it needs at run time.",
                   [("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION), _LOGGING],
                   alone=(("org.apache.kafka", "kafka-tools", KAFKA_VERSION),))
        _resolve_jars(pom, self._cached(), KAFKA_VERSION, what="fetching the Kafka jars")
        found = self.locate()
        assert found is not None, "kafka cache was written but not found"
        return found

    def how_to_install(self) -> str:
        return "run `faultline setup` (needs Java and Maven) or set KAFKA_HOME to an Apache Kafka install"


def _resolve_jars(pom: str, target: Path, stamp: str, *, what: str) -> None:
    """Resolve ``pom``'s runtime dependencies into ``target/libs`` with Maven, all or nothing: a
    staging directory is renamed into place once every jar is there (``.complete`` says so)."""
    mvn = maven()
    with staged(target) as staging:
        (staging / "pom.xml").write_text(pom)
        run_logged([mvn, "-B", "-q", "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging / 'libs'}", "-DincludeScope=runtime"],
                   setup_log(), what=what, cwd=staging)
        (staging / ".complete").write_text(stamp + "\n")


class Debezium(Component):
    """Kafka Connect (the broker's version) with Debezium's Postgres connector; ``path`` is the
    directory of jars the worker's class path is made of. Installed on request (``faultline setup
    --with debezium``) or when a target needs it; one cache directory per Debezium version, so a
    target pinning an older release has its own."""

    name = "debezium"

    def __init__(self, version: str = DEBEZIUM_VERSION) -> None:
        self.version = version

    def _cached(self) -> Path:
        return cache_dir() / f"debezium-{self.version}-connect-{KAFKA_VERSION}"

    def locate(self) -> Installed | None:
        if (self._cached() / ".complete").exists():
            return Installed(self.name, str(self._cached() / "libs"), self.version, "cache")
        return None

    def install(self, log: Log) -> Installed:
        log(f"resolving Kafka Connect {KAFKA_VERSION} and Debezium {self.version} with Maven")
        pom = _pom("kafka-connect-debezium-runtime",
                   "a Kafka Connect worker of the broker's version, its JSON converter, Debezium's connector.",
                   [("org.apache.kafka", "connect-runtime", KAFKA_VERSION),
                    ("org.apache.kafka", "connect-json", KAFKA_VERSION),
                    ("io.debezium", "debezium-connector-postgres", self.version), _LOGGING])
        _resolve_jars(pom, self._cached(), self.version, what=f"fetching Kafka Connect and Debezium {self.version}")
        found = self.locate()
        assert found is not None, "debezium cache was written but not found"
        return found

    def how_to_install(self) -> str:
        return f"run `faultline setup --with debezium` (needs Java and Maven) for Debezium {self.version}"


class Toxiproxy(Component):
    name = "toxiproxy"

    def _cached(self) -> Path:
        return cache_dir() / f"toxiproxy-{TOXIPROXY_VERSION}" / "toxiproxy-server"

    def locate(self) -> Installed | None:
        override = os.environ.get("TOXIPROXY_SERVER")
        candidates = [(override, "TOXIPROXY_SERVER")] if override else [
            (shutil.which("toxiproxy-server"), "PATH"), (str(self._cached()), "cache")]
        for path, source in candidates:
            if path and os.access(path, os.X_OK):
                # `go install` builds carry no version stamp ("git"): name the pinned one.
                version = TOXIPROXY_VERSION if source == "cache" else version_of([path, "-version"])
                return Installed(self.name, path, version, source)
        return None

    def install(self, log: Log) -> Installed:
        if os.environ.get("TOXIPROXY_SERVER"):
            raise SetupError(f"TOXIPROXY_SERVER={os.environ['TOXIPROXY_SERVER']} is not an "
                             "executable file; fix the path or unset it")
        go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
        if go is None:
            raise SetupError("toxiproxy: Go is needed to build the Toxiproxy server "
                             f"(`go install {TOXIPROXY_MODULE}/cmd/server@{TOXIPROXY_VERSION}`); "
                             "install Go 1.22 or newer, or set TOXIPROXY_SERVER")
        target = self._cached()
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as gobin:
            log(f"building Toxiproxy {TOXIPROXY_VERSION} with go install")
            env = dict(os.environ, GOBIN=gobin, CGO_ENABLED="0")
            run_logged([go, "install", f"{TOXIPROXY_MODULE}/cmd/server@{TOXIPROXY_VERSION}"],
                       setup_log(), what="building toxiproxy-server", env=env)
            os.replace(Path(gobin) / "server", target)
        found = self.locate()
        assert found is not None, "toxiproxy was built but not found"
        return found

    def how_to_install(self) -> str:
        return "run `faultline setup` (needs Go) or set TOXIPROXY_SERVER to a toxiproxy-server binary"


class Fuse(Component):
    """libfuse 3, for the faulty file system under the exporter's directories (mfusepy binds it)."""

    name = "fuse"
    debian_packages = ["fuse3"]

    def locate(self) -> Installed | None:
        import ctypes.util

        found = ctypes.util.find_library("fuse3")
        if found is None or not Path("/dev/fuse").exists():
            return None
        return Installed(self.name, found, found.removeprefix("libfuse3.so."), "system")

    def install(self, log: Log) -> Installed:
        if not Path("/dev/fuse").exists():
            raise SetupError("fuse: this machine has no /dev/fuse (a container needs --device /dev/fuse); "
                             "the file-system fault kinds cannot run here")
        return self._install_debian(log)

    def how_to_install(self) -> str:
        return "install libfuse 3 (Debian: `apt-get install fuse3`); /dev/fuse must exist"


COMPONENTS: dict[str, Component] = {c.name: c for c in (Postgres(), Redis(), Java(), Kafka(), Toxiproxy(), Wallclock(),
                                                        Fuse())}
# Installed on request (`faultline setup --with NAME`) or when a target definition needs them.
OPTIONAL: dict[str, Component] = {c.name: c for c in (Debezium(), DebeziumServer())}


def _chosen(with_: tuple[str, ...]) -> dict[str, Component]:
    unknown = sorted(set(with_) - set(OPTIONAL))
    if unknown:
        raise SetupError(f"no optional component {', '.join(unknown)}; there are: {', '.join(OPTIONAL)}")
    return {**COMPONENTS, **{name: OPTIONAL[name] for name in with_}}


def check_all(with_: tuple[str, ...] = ()) -> dict[str, Installed | None]:
    """What is present now (the usual components and those asked for); installs nothing."""
    return {name: component.locate() for name, component in _chosen(with_).items()}


def provision_all(log: Log, on_done: Callable[[Installed], None] | None = None,
                  with_: tuple[str, ...] = ()) -> dict[str, Installed]:
    """Find or install every component (and those asked for); idempotent, so a second run only looks."""
    result: dict[str, Installed] = {}
    with cache_lock():
        for name, component in _chosen(with_).items():
            found = component.locate()
            if found is None:
                found = component.install(log)
            result[name] = found
            if on_done:
                on_done(found)
    return result


def ensure(component: Component, log: Log) -> Installed:
    """The component, installed first if it is not (a target that needs Debezium gets it)."""
    with cache_lock():
        return component.locate() or component.install(log)


def require(name: str) -> Installed:
    """The installed component, or a SetupError saying exactly what to do."""
    component = COMPONENTS.get(name) or OPTIONAL[name]
    found = component.locate()
    if found is None:
        raise SetupError(f"{name} is not available: {component.how_to_install()}")
    return found
