"""Two more Kafka brokers for the local backend, started when a failover scenario asks for them.

The stack's Kafka (node 1) is broker and the quorum's controller; nodes 2 and 3 are brokers of
the same cluster, each behind two Toxiproxy proxies of its own: ``kafka-<n>`` for clients (what
it advertises on PLAINTEXT, so a client that bootstrapped through the proxies stays behind
them) and ``kafka-replication-<n>`` for the brokers that fetch from it (what it advertises on
REPLICATION). Cutting ``kafka-replication-<n>`` leaves broker n serving clients while its
followers fetch nothing: acknowledged writes that exist on one broker only, the loss a leader's
death then makes. Node 1's replication proxy is the local backend's own (created with the links).

The controller quorum has three voters while the peers run: node 1 starts a dynamic quorum
alone (KIP-853, ``--standalone``), and nodes 2 and 3, formatted without voters, join it as
observers and are then added as voters (``kafka-metadata-quorum add-controller``): a single-node
stack keeps one JVM, and a failover's cluster survives the loss of any one node, node 1 (the
active controller) included. A failover scenario leads its partition on node 2 (the replica
assignment is the step's).

Between scenarios the peers are removed from the quorum (two of three voters down would stop
it) and stopped (a controlled shutdown: they leave the cluster at once),
so that a topic another scenario's exporter creates lands on broker 1, behind the ``kafka``
link its link faults cut; the next failover scenario starts them again with the same log
directories (a broker that came back with a fresh one would be a different broker to the
controller), which takes seconds, not the first start's storage format.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from harness.errors import HarnessError
from harness.infra.kafka_clients import kafka_config
from harness.infra.toxiproxy import ToxiproxyClient
from harness.infra.waiting import wait_for
from harness.services.executor import ServiceExecutor, free_port
from harness.services.servers import HOST, KafkaServer, kafka_quorum_command

PEERS = (2, 3)
BROKERS = (1, *PEERS)
JOIN_TIMEOUT_S = 60.0


def client_proxy(node: int) -> str:
    """The clients' proxy of broker ``node`` (node 1's is the stack's ``kafka`` link)."""
    return "kafka" if node == 1 else f"kafka-{node}"


def replication_proxy(node: int) -> str:
    return f"kafka-replication-{node}"


def live_brokers(bootstrap: str, timeout: float = 5.0) -> set[int]:
    """The brokers the cluster's metadata names (a fenced or dead broker is not among them)."""
    admin = AdminClient(kafka_config(bootstrap, **{"socket.connection.setup.timeout.ms": 3000}))
    return set(admin.list_topics(timeout=timeout).brokers)


def directory_id(server: KafkaServer) -> str:
    """The id Kafka gave the node's log directory when it was formatted (a voter is named by it)."""
    for line in (server.root / "data" / "meta.properties").read_text().splitlines():
        if line.startswith("directory.id="):
            return line.split("=", 1)[1].strip()
    raise HarnessError(f"kafka: no directory.id in {server.root / 'data' / 'meta.properties'}")


@dataclass
class KafkaPeers:
    """Brokers 2 and 3 of node 1's cluster, their proxies, and which of them are down."""

    first: KafkaServer
    toxiproxy: ToxiproxyClient
    workdir: Path
    start_timeout: float
    servers: dict[int, KafkaServer] = field(default_factory=dict)
    executors: dict[int, ServiceExecutor] = field(default_factory=dict)

    def start(self) -> dict[str, Any]:
        """Brokers 2 and 3 made and started, or (put away between scenarios) the same ones again."""
        began = time.monotonic()
        restarted = bool(self.servers)
        if not restarted:
            for node in PEERS:
                self.servers[node] = KafkaServer(
                    f"kafka-{node}", self.workdir / f"kafka-{node}", free_port(), start_timeout=self.start_timeout,
                    direct_port=free_port(), advertised_port=free_port(), replication_port=free_port(),
                    replication_advertised_port=free_port(), node_id=node, heap="512m",
                    controller_port=free_port(), quorum_bootstrap=self.controller,
                    cluster_id=self.first.cluster_id)
        self.create_proxies()
        with ThreadPoolExecutor(max_workers=len(PEERS), thread_name_prefix="faultline-kafka-peer") as pool:
            failures = [f.exception() for f in [pool.submit(self._boot, node, restarted) for node in PEERS]]
        for failure in failures:
            if failure is not None:
                raise failure
        self.wait_joined(set(BROKERS))
        for node in PEERS:
            self.quorum("--command-config", str(self.servers[node].properties_path), "add-controller")
        return {"brokers": {node: self.describe(node) for node in BROKERS}, "restarted": restarted,
                "voters": sorted(self.voters()), "start_seconds": round(time.monotonic() - began, 2)}

    @property
    def controller(self) -> str:
        return f"{HOST}:{self.first.controller_port}"

    def quorum(self, *args: str) -> str:
        """Kafka's quorum command against node 1's controller (or, node 1 down, a peer's)."""
        live = [self.controller] + [f"{HOST}:{self.servers[n].controller_port}" for n in sorted(self.running())]
        return kafka_quorum_command(",".join(live), list(args), self.workdir)

    def voters(self) -> set[int]:
        """The controller quorum's voters, as its leader says."""
        status = self.quorum("describe", "--status")
        line = next((x for x in status.splitlines() if x.startswith("CurrentVoters:")), "")
        return {int(v["id"]) for v in json.loads(line.split(":", 1)[1] or "[]")} if line else set()

    def quorum_leader(self) -> int | None:
        status = self.quorum("describe", "--status")
        line = next((x for x in status.splitlines() if x.startswith("LeaderId:")), "")
        return int(line.split(":", 1)[1]) if line else None

    def _boot(self, node: int, restarted: bool) -> None:
        if restarted:
            self.start_again(node)
            return
        self.servers[node].prepare()
        self.launch(node)

    def create_proxies(self) -> None:
        """The peers' proxies (again, after Toxiproxy itself restarted)."""
        existing = self.toxiproxy.proxies()
        for node, server in self.servers.items():
            for name, listen, upstream in ((client_proxy(node), server.advertised_port, server.port),
                                           (replication_proxy(node), server.replication_advertised_port,
                                            server.replication_port)):
                if name not in existing:
                    self.toxiproxy.create_proxy(name, f"{HOST}:{listen}", f"{HOST}:{upstream}")

    def describe(self, node: int) -> str:
        server = self.first if node == 1 else self.servers[node]
        return (f"broker {node}: clients {HOST}:{server.advertised_port}, replication "
                f"{HOST}:{server.replication_advertised_port}, direct {HOST}:{server.direct_port}")

    def launch(self, node: int) -> None:
        executor = self.servers[node].executor()
        self.executors[node] = executor
        executor.start()

    def wait_joined(self, nodes: set[int]) -> None:
        bootstrap = f"{HOST}:{self.first.direct_port}"
        wait_for(lambda: nodes <= live_brokers(bootstrap), timeout=JOIN_TIMEOUT_S, interval=0.2,
                 what=f"Kafka brokers {sorted(nodes)} to be registered with the controller")

    def peer(self, node: int) -> KafkaServer:
        if node not in self.servers:
            raise HarnessError(f"kafka: broker {node} is not a peer this backend runs (peers: {list(PEERS)}; "
                               f"broker 1 is the kafka service, killed as such)")
        return self.servers[node]

    def kill(self, node: int) -> None:
        self.peer(node)
        executor = self.executors.pop(node, None)
        if executor is None:
            raise HarnessError(f"kafka: broker {node} is not running")
        executor.kill()

    def start_again(self, node: int) -> None:
        """A killed peer back with its data (it truncates to the new leader and catches up)."""
        self.peer(node)
        if node in self.executors and self.executors[node].running():
            return
        self.executors.pop(node, None)
        self.launch(node)
        self.wait_joined({node})

    def cut(self, node: int, cut: bool) -> None:
        """Broker ``node``'s followers fetch nothing from it (``cut``), or fetch again."""
        self.toxiproxy.proxy(replication_proxy(node)).set_enabled(not cut)

    def running(self) -> set[int]:
        return {node for node, executor in self.executors.items() if executor.running()}

    def put_away(self) -> None:
        """Between scenarios: every replication link up, the peers stopped with a controlled
        shutdown (they leave the cluster now, not a session later) and their proxies gone."""
        for node in BROKERS:
            if replication_proxy(node) in self.toxiproxy.proxies():
                self.cut(node, False)
        for node in sorted(self.running()):
            directory = directory_id(self.servers[node])
            self.quorum("remove-controller", "--controller-id", str(node), "--controller-directory-id", directory)
        for node in list(self.executors):
            self.executors.pop(node).stop()
        existing = self.toxiproxy.proxies()
        for node in PEERS:
            for name in (client_proxy(node), replication_proxy(node)):
                if name in existing:
                    self.toxiproxy.delete_proxy(name)

    def stop(self) -> None:
        """At the stack's end: killed (throwaway data)."""
        for executor in self.executors.values():
            executor.kill()
        self.executors.clear()
