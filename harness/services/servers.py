"""The four servers of the local backend: how each is prepared once and launched (again).

``prepare()`` runs once per stack (initdb, storage format); ``executor()`` builds a fresh
executor each time the server is (re)started, so a restart keeps the server's data.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypedDict

from harness.errors import HarnessError, ServiceStartError, SetupError
from harness.provision import require
from harness.provision.commands import tail
from harness.services import probes
from harness.services.executor import ServiceExecutor

HOST = "127.0.0.1"
UNPRIVILEGED_USER = "nobody"


def random_secret() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class Server:
    """One server on ``HOST:port`` with its files under ``root``."""

    name: str
    root: Path
    port: int
    start_timeout: float = 60.0

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def prepare(self) -> None:
        # 0700, its owner's: a server that runs as root keeps its files where no other user can
        # reach them (the stack directory above lets others pass through, not look).
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def executor(self) -> ServiceExecutor:
        raise NotImplementedError


class Privileges(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _drop_privileges() -> Privileges:
    """Popen arguments that run a child as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def write_secret(path: Path, text: str) -> None:
    """A file only its owner can read, from the moment it exists (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def private_directory(path: Path) -> None:
    """The stack's directory: the current user's, 0711 when root (others may pass through to
    Postgres's directory, which is the unprivileged user's own, but list nothing) and 0700
    otherwise. Each server's directory is its owner's, 0700: an unprivileged process can never
    swap the files of a server that runs as root (it owned the whole stack directory before)."""
    os.chmod(path, 0o711 if os.geteuid() == 0 else 0o700)


def _chown_for_child(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        for dirpath, _dirs, files in os.walk(path):
            os.chown(dirpath, user.pw_uid, user.pw_gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


@dataclass
class PostgresServer(Server):
    """PostgreSQL refuses to run as root, so as root it runs as ``nobody``."""

    user: str = "faultline"
    database: str = "faultline"
    password: str = field(default_factory=random_secret)
    settings: tuple[str, ...] = ()  # more -c settings (logical replication for a CDC target)

    def prepare(self) -> None:
        super().prepare()
        bindir = Path(require("postgres").path)
        data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir(exist_ok=True)
        pwfile = self.root / "pwfile"
        write_secret(pwfile, self.password + "\n")
        _chown_for_child(self.root)
        proc = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", self.user, "--pwfile", str(pwfile),
             "--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"],
            capture_output=True, text=True, check=False, timeout=120, **_drop_privileges())
        pwfile.unlink()
        if proc.returncode != 0:
            raise ServiceStartError(self.name, f"initdb failed ({proc.returncode}): {proc.stderr.strip()}")

    def executor(self) -> ServiceExecutor:
        bindir = Path(require("postgres").path)
        command = [str(bindir / "postgres"), "-D", str(self.root / "data"), "-p", str(self.port),
                   "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={self.root / 'sockets'}",
                   # Throwaway data: durability of the harness's own database is not under test.
                   "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
                   *(arg for setting in self.settings for arg in ("-c", setting))]
        return ServiceExecutor(
            self.name, command, host=HOST, port=self.port, log_path=self.log_path,
            timeout=self.start_timeout, stop_signal=signal.SIGINT,
            ready=self._ready_and_created,
            popen_kwargs=dict(_drop_privileges()))

    def _ready_and_created(self) -> bool:
        if not probes.postgres_ready(HOST, self.port, self.user, self.password, "postgres"):
            return False
        import psycopg  # local: only the first start needs it

        with psycopg.connect(host=HOST, port=self.port, user=self.user, password=self.password,
                             dbname="postgres", autocommit=True, connect_timeout=2) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')
        return probes.postgres_ready(HOST, self.port, self.user, self.password, self.database)


@dataclass
class RedisServer(Server):
    """``persistence`` is ``aof`` (data survives a restart) or ``none`` (a restart empties it)."""

    password: str = field(default_factory=random_secret)
    persistence: str = "aof"
    arguments: tuple[str, ...] = ()  # more server arguments (ACL users: on the command line, a restart keeps them)

    def executor(self) -> ServiceExecutor:
        binary = require("redis").path
        persistence = (["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistence == "aof"
                       else ["--appendonly", "no"])
        command = [binary, "--port", str(self.port), "--bind", HOST, "--requirepass", self.password,
                   "--dir", str(self.root), "--save", "", "--protected-mode", "yes",
                   "--daemonize", "no", *persistence]
        command += self.arguments
        return ServiceExecutor(self.name, command, host=HOST, port=self.port, log_path=self.log_path,
                               timeout=self.start_timeout,
                               ready=partial(probes.redis_ready, HOST, self.port, self.password))


_KAFKA_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""


@dataclass
class KafkaServer(Server):
    """A KRaft node with two client listeners and one for replication.

    ``PLAINTEXT`` advertises the Toxiproxy address (``advertised_port``), so clients that
    bootstrap through the proxy keep going through it after the metadata round trip.
    ``DIRECT`` advertises itself: the reconciler reads the topic without any fault in the way.
    ``REPLICATION`` (when ``replication_port`` is set) is what other brokers fetch from, and it
    advertises a proxy of its own (``replication_advertised_port``): cutting that proxy cuts this
    broker off from its followers while clients still reach it. Every node is broker and
    controller of a dynamic quorum (KIP-853): node 1 starts it alone (``--standalone``); more nodes
    (harness.backends.kafka_peers) are formatted without voters, find it through
    ``quorum_bootstrap`` and are added as voters once they run.
    """

    direct_port: int = 0
    controller_port: int = 0
    advertised_port: int = 0
    replication_port: int = 0
    replication_advertised_port: int = 0
    node_id: int = 1
    quorum_bootstrap: str = ""  # another controller to join (host:port); empty: this node starts the quorum
    heap: str = "1g"
    cluster_id: str = "ZmF1bHRsaW5lLWthZmthMQ"  # any 22-char base64 id; the cluster is throwaway

    @property
    def properties_path(self) -> Path:
        return self.root / "server.properties"

    def prepare(self) -> None:
        super().prepare()
        self.write_properties()
        (self.root / "log4j.properties").write_text(_KAFKA_LOG4J)
        java = require("java").path
        proc = subprocess.run(
            [java, *self._jvm_classpath(), "kafka.tools.StorageTool", "format", "-t", self.cluster_id,
             "-c", str(self.properties_path), "--ignore-formatted",
             "--no-initial-controllers" if self.quorum_bootstrap else "--standalone"],
            capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise ServiceStartError(self.name, f"storage format failed ({proc.returncode}): "
                                    f"{(proc.stdout + proc.stderr).strip()[-2000:]}")

    def write_properties(self) -> None:
        """server.properties for the current ports (written again when the broker moves)."""
        data = self.root / "data"
        listeners = [f"PLAINTEXT://{HOST}:{self.port}", f"DIRECT://{HOST}:{self.direct_port}",
                     f"CONTROLLER://{HOST}:{self.controller_port}"]
        advertised = [f"PLAINTEXT://{HOST}:{self.advertised_port}", f"DIRECT://{HOST}:{self.direct_port}",
                      f"CONTROLLER://{HOST}:{self.controller_port}"]
        if self.replication_port:
            listeners.append(f"REPLICATION://{HOST}:{self.replication_port}")
            advertised.append(f"REPLICATION://{HOST}:{self.replication_advertised_port}")
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.bootstrap.servers": self.quorum_bootstrap or f"{HOST}:{self.controller_port}",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,DIRECT:PLAINTEXT,REPLICATION:PLAINTEXT,"
                                              "CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "REPLICATION" if self.replication_port else "DIRECT",
            # A broker killed outright is fenced (its partitions led elsewhere) within six seconds,
            # and a follower that stopped fetching leaves the ISR within five: a failover
            # scenario's window, not Kafka's defaults of 9 and 30 s. Twelve heartbeats a session:
            # a busy machine delaying a few does not fence a live broker.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "500",
            "replica.lag.time.max.ms": "5000",
            "log.dirs": str(data),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            # One node: internal topics with one replica and one partition start in milliseconds.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": "1048588",
        }
        self.properties_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def config_command(self, args: list[str]) -> str:
        return kafka_config_command(f"{HOST}:{self.direct_port}", args, self.root)

    def _jvm_classpath(self) -> list[str]:
        libs = Path(require("kafka").path)
        if not any(libs.glob("*.jar")):
            raise SetupError(f"kafka: no jars in {libs}; run `faultline setup`")
        return ["-cp", f"{libs}/*", f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}"]

    def executor(self) -> ServiceExecutor:
        java = require("java").path
        command = [java, "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                   "-Djava.awt.headless=true", *self._jvm_classpath(), "kafka.Kafka", str(self.properties_path)]
        return ServiceExecutor(self.name, command, host=HOST, port=self.port, log_path=self.log_path,
                               timeout=self.start_timeout,
                               ready=partial(probes.kafka_ready, f"{HOST}:{self.direct_port}"),
                               expected_returncode=143)  # the JVM's exit code for SIGTERM: a clean stop


def kafka_config_command(bootstrap: str, args: list[str], workdir: Path, timeout: float = 60.0) -> str:
    """Kafka's own ``kafka-configs`` (ConfigCommand) from the installed jars against ``bootstrap``:
    client quotas have no admin call in librdkafka. Returns its answer; a failure is a
    HarnessError carrying its output."""
    return kafka_tool("kafka.admin.ConfigCommand", ["--bootstrap-server", bootstrap, *args], workdir, timeout)


def kafka_quorum_command(controller: str, args: list[str], workdir: Path, timeout: float = 60.0) -> str:
    """Kafka's ``kafka-metadata-quorum`` against the controller at ``controller``: adding and
    removing voters has no admin call in librdkafka."""
    return kafka_tool("org.apache.kafka.tools.MetadataQuorumCommand", ["--bootstrap-controller", controller, *args],
                      workdir, timeout)


def kafka_tool(main_class: str, args: list[str], workdir: Path, timeout: float = 60.0) -> str:
    """One of Kafka's command-line tools from the installed jars; its answer, or a HarnessError
    carrying its output."""
    java = require("java").path
    libs = Path(require("kafka").path)
    quiet = workdir / "tools-log4j.properties"  # the tool's answer alone on stdout, warnings on stderr
    quiet.write_text("log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
                     "log4j.appender.stderr.Target=System.err\n"
                     "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n")
    proc = subprocess.run([java, "-cp", f"{libs}/*", f"-Dlog4j.configuration=file:{quiet}", main_class, *args],
                          capture_output=True, text=True, check=False, timeout=timeout)
    if proc.returncode != 0:
        raise HarnessError(f"{main_class.rsplit('.', 1)[-1]} {' '.join(args)} failed ({proc.returncode}): "
                           f"{(proc.stdout + proc.stderr).strip()[-1000:]}")
    return proc.stdout.strip()


@dataclass
class ToxiproxyServer(Server):
    def executor(self) -> ServiceExecutor:
        binary = require("toxiproxy").path
        command = [binary, "-host", HOST, "-port", str(self.port)]
        return ServiceExecutor(self.name, command, host=HOST, port=self.port, log_path=self.log_path,
                               timeout=self.start_timeout,
                               ready=partial(probes.toxiproxy_ready, HOST, self.port))


def describe_failure(server: Server) -> str:
    return f"{server.name} log ({server.log_path}):\n{tail(server.log_path)}"


def remove_tree(path: Path) -> None:
    """Remove a run directory; errors other than 'already gone' propagate."""
    if path.exists():
        shutil.rmtree(path)
