"""What every backend (local processes, Docker, external servers) offers the harness."""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import HarnessError
from harness.infra.lifecycle import StopAtExit
from harness.infra.reaper import reap
from harness.infra.stack import Stack
from harness.model.capabilities import Need, NeedKind

_live: StopAtExit[Backend] = StopAtExit(lambda backend: backend.stop())
DEVICES = Path("/dev")


def device_missing(name: str) -> str | None:
    """Why this machine cannot lend a step the kernel device ``name`` (a container started
    without ``--device /dev/fuse``), or None: a step that needs it is then skipped, not failed."""
    path = DEVICES / name
    if not path.exists():
        return f"this machine has no {path} (a file-system fault mounts a FUSE file system)"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by this user"
    return None


class Backend(ABC):
    """Starts the servers and proxies, hands out a :class:`Stack`, and tears it all down."""

    name = "abstract"
    # Postgres with logical replication (wal_level=logical), for a target that reads its WAL (a CDC
    # connector): set before start; a backend that cannot leaves it to the run's check.
    logical_replication: bool = False
    # A Sentinel monitoring Redis, for a target that finds its buffer's primary through one: set
    # before start; a backend that cannot run one says so (``cannot_serve``).
    redis_sentinel: bool = False
    runs_sentinel = False  # whether this backend can start one
    POSTGRES_LOGICAL = ("wal_level=logical", "max_replication_slots=32", "max_wal_senders=32")
    # Statement counters per role (pg_stat_statements): how the pause check sees the exporter
    # reading its source while paused (harness.rig.source_reads).
    POSTGRES_STATEMENTS = ("shared_preload_libraries=pg_stat_statements",)
    # An old primary can be rewound onto its promoted standby's timeline: pg_rewind needs hint-bit
    # changes in the WAL (or data checksums), and the old primary's WAL back to the last checkpoint
    # before the timelines diverged (kept, not recycled).
    POSTGRES_REWINDABLE = ("wal_log_hints=on", "wal_keep_size=256MB")

    def postgres_settings(self) -> tuple[str, ...]:
        """The ``-c`` settings the harness's Postgres starts with."""
        return (self.POSTGRES_STATEMENTS + self.POSTGRES_REWINDABLE
                + (self.POSTGRES_LOGICAL if self.logical_replication else ()))

    def __init__(self) -> None:
        self._stack: Stack | None = None

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            raise RuntimeError(f"{self.name} backend is not started")
        return self._stack

    def start(self) -> Stack:
        if self.redis_sentinel and not self.runs_sentinel:
            raise HarnessError(f"the {self.name} backend runs no Redis Sentinel, and the target finds its buffer's "
                               "primary through one (redis_discovery = \"sentinel\"): use the local backend")
        # What killed runs left (servers, mounts, immutable directories) goes first, and is said.
        for line in reap():
            print(f"faultline: left by a dead run, cleaned up: {line}", file=sys.stderr)
        _live.add(self)
        try:
            self._stack = self._start()
        except BaseException:
            self.stop()
            raise
        return self._stack

    def stop(self) -> None:
        try:
            self._stop()
        finally:
            self._stack = None
            _live.discard(self)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @abstractmethod
    def _start(self) -> Stack: ...

    @abstractmethod
    def _stop(self) -> None: ...

    @abstractmethod
    def kill_service(self, service: str) -> None:
        """SIGKILL (or the closest equivalent): no shutdown work at all."""

    @abstractmethod
    def stop_service(self, service: str) -> None:
        """A graceful stop."""

    @abstractmethod
    def start_service(self, service: str) -> None:
        """Start a stopped service again with its data, and wait until it is ready."""

    @abstractmethod
    def freeze_service(self, service: str) -> None:
        """SIGSTOP: the process stays, answers nothing."""

    @abstractmethod
    def thaw_service(self, service: str) -> None: ...

    @abstractmethod
    def wipe_service_data(self, service: str) -> None:
        """Delete a stopped server's data (a Redis without persistence losing its memory)."""

    def unsupported(self, step_do: object) -> str | None:
        """Why this backend cannot perform a step (the scenario is then skipped), or None: the first
        capability the step needs (``StepKind.needs``) that this backend lacks."""
        needs = getattr(step_do, "needs", None)
        for capability in sorted(needs() if needs is not None else ()):
            reason = self.lacks(capability)
            if reason is not None:
                return reason
        return None

    def lacks(self, capability: Need) -> str | None:
        """Why this backend cannot offer ``capability``, or None when it can (a team's own
        ``Need.own(...)`` is offered unless a team's backend subclass says otherwise)."""
        kind, name = capability.kind, capability.name
        if kind is NeedKind.ROOT and os.geteuid() != 0:
            return "this step needs root (it mounts a tmpfs or sets the immutable flag)"
        if kind is NeedKind.FILES and name not in self.files:
            return f"the {self.name} backend keeps no data of {name} on this machine"
        if kind is NeedKind.TOOL and name not in self.tools:
            return f"the {self.name} backend cannot run {name} against its servers"
        if kind is NeedKind.MOVE and name not in self.movable:
            return f"the {self.name} backend cannot bring {name} back on a new address"
        if kind is NeedKind.REPLICA and name not in self.replicated:
            return f"the {self.name} backend runs no replica of {name} (a failover needs one)"
        if kind is NeedKind.DEVICE:
            return device_missing(name)
        if kind is NeedKind.PROTOCOL and not self.protocol_proxies:
            return (f"the {self.name} backend's Toxiproxy cannot reach a protocol proxy in the harness's "
                    f"process (a {name} protocol fault needs it)")
        return self._stack_lacks(capability)

    movable: frozenset[str] = frozenset()  # servers this backend can restart on a new address
    replicated: frozenset[str] = frozenset()  # servers it can give a replica to fail over to (``replica:<name>``)
    # Whether its Toxiproxy can reach a protocol proxy on this machine's loopback (not from a container).
    protocol_proxies: bool = True
    tools: frozenset[str] = frozenset()  # server-side admin tools it can run (``tool:<name>``)
    files: frozenset[str] = frozenset()  # servers whose data directory is on this machine (``files:<name>``)

    def service_data_dir(self, service: str) -> Path:
        """Where a server keeps its data on this machine; needs ``files:<service>``."""
        raise HarnessError(f"the {self.name} backend has no data directory of {service} on this machine")

    def kafka_configs(self, args: list[str]) -> str:
        """Run Kafka's ``kafka-configs`` against the broker (client quotas); needs ``tool:kafka-configs``."""
        raise HarnessError(f"the {self.name} backend cannot run kafka-configs")

    def start_service_moved(self, service: str) -> None:
        """Start a stopped server on new ports, with its proxy pointed at it (a failover, a broker
        that came back elsewhere); only for the servers in ``movable``."""
        raise HarnessError(f"the {self.name} backend cannot move {service}")

    # -- replicas and failover (only for the servers in ``replicated``) ---------------------------
    def start_replica(self, service: str) -> dict[str, Any]:
        """Start a replica of ``service``, replicating through a proxied link of its own, and wait
        until it is in sync; what it is, as evidence."""
        raise HarnessError(f"the {self.name} backend runs no replica of {service}")

    def cut_replication(self, service: str, cut: bool) -> None:
        """Cut (or restore) the replica's replication link: writes go on without reaching it."""
        raise HarnessError(f"the {self.name} backend runs no replica of {service}")

    def fail_over(self, service: str, planned: bool = False) -> dict[str, Any]:
        """Promote the replica, point the clients' proxy at it (their connections cut, as a moved
        address would), and make the old primary its replica; evidence read back from both."""
        raise HarnessError(f"the {self.name} backend runs no replica of {service}")

    def rejoin_old_primary(self, service: str) -> dict[str, Any]:
        """After a failover: the old primary rewound onto the new one's history and started as its
        replica (``tool:pg_rewind`` for Postgres); evidence from the tool and the node."""
        raise HarnessError(f"the {self.name} backend cannot rejoin an old primary of {service}")

    # -- a Kafka cluster (``replica:kafka``): brokers 2 and 3 beside the stack's broker 1 --------
    def kill_broker(self, node: int) -> None:
        """SIGKILL broker ``node`` (a peer: broker 1 is the ``kafka`` service, killed as such)."""
        raise HarnessError(f"the {self.name} backend runs one Kafka broker")

    def start_broker(self, node: int) -> None:
        """A killed broker back with its data, registered again with the controller."""
        raise HarnessError(f"the {self.name} backend runs one Kafka broker")

    def cut_broker_replication(self, node: int, cut: bool) -> None:
        """Cut (or restore) what broker ``node``'s followers fetch from it; clients still reach it."""
        raise HarnessError(f"the {self.name} backend runs one Kafka broker")

    def replication_lag(self, service: str) -> float | None:
        """How far ``service``'s replica is behind its primary (bytes of WAL or of the replication
        stream); None when no replica is replicating (none started, or it was promoted)."""
        return None

    def topology(self) -> dict[str, Any]:
        """Every node this backend runs and every proxy between them, read back from the servers
        (``faultline up --check``); a backend that runs one node per server says only that."""
        return {"nodes": "one per server"}

    def restore_topology(self) -> None:
        """Back to one node per server, the original ones serving (between scenarios)."""
        return  # a backend that runs no replicas has none to put away

    def _stack_lacks(self, capability: Need) -> str | None:
        """What the running stack cannot offer: administrator access to a server, or credentials
        of the exporter's own (a fault aimed at them would hit the harness too)."""
        kind, name = capability.kind, capability.name
        stack = self._stack
        if stack is None:
            return None
        if kind is NeedKind.ADMIN and stack.admin is not None and name not in stack.admin:
            return (f"this stack gives no administrator access to {name} (a service fault needs it; the "
                    f"external backend's settings can name {name}_admin)")
        if capability == Need.exporter_credentials() and stack.exporter is None:
            return ("the exporter shares the harness's credentials on this stack: a fault aimed at its "
                    "own role or user would hit the harness as well")
        return None

    @abstractmethod
    def ensure_running(self) -> None:
        """Bring every service back to running and unfrozen (between tests)."""

