"""What a step needs from the backend and the target, typed: a ``Need`` is a kind and a name.

A step kind's ``needs()`` returns a frozenset of these; the backend says which it lacks (root,
a link it can fault, a server it can restart or move, admin access, a tool, a data directory,
credentials of the exporter's own), the target which it does not offer (an HTTP API, a sink)
or does not use (a server its pipeline never goes through), and explore reads from them which
servers a fault touches. A team's own capability is ``Need.own("name")``: every built-in
backend offers it, and a team's backend subclass decides in ``lacks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NeedKind(StrEnum):
    ROOT = "root"                # mounts a tmpfs, sets the immutable flag
    LINK = "link"                # a Toxiproxy link it can fault (name: the link)
    PROTOCOL = "protocol"        # a protocol proxy on the server's link (name: the server)
    RESTART = "restart"          # a server it can stop and start (name: the service)
    MOVE = "move"                # a server it can bring back on new ports
    REPLICA = "replica"          # a replica of the server it can run, lag, promote and demote (name: the server)
    ADMIN = "admin"              # administrator access to a server (name: the server)
    FILES = "files"              # the server's data directory is on this machine
    TOOL = "tool"                # a server-side admin tool (name: the tool)
    CREDENTIALS = "credentials"  # the exporter's own role/user (name: "exporter")
    API = "api"                  # an HTTP API the target offers (name: exports, pause)
    PRELOAD = "preload"          # a library preloaded into the target's process (name: wallclock)
    DEVICE = "device"            # a kernel device on this machine (name: fuse, for /dev/fuse)
    SINK = "sink"                # a sink the target has (name: the sink)
    OWN = "own"                  # a team's own capability (name: theirs)


# Kinds whose name is a server the step acts on: explore keeps two faults off one server, and a
# target that does not use the server has nothing for the step to act on.
SERVER_KINDS = frozenset({NeedKind.LINK, NeedKind.PROTOCOL, NeedKind.RESTART, NeedKind.MOVE, NeedKind.ADMIN,
                          NeedKind.FILES, NeedKind.REPLICA})


@dataclass(frozen=True, order=True)
class Need:
    kind: NeedKind
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else str(self.kind)

    @property
    def server(self) -> str | None:
        """The server this need acts on, if it is about one."""
        return self.name if self.kind in SERVER_KINDS else None

    @property
    def takes_server_away(self) -> bool:
        """Stopping or moving a server: the other servers' faults must wait for it to come back."""
        return self.kind in (NeedKind.RESTART, NeedKind.MOVE)

    @classmethod
    def root(cls) -> Need:
        return cls(NeedKind.ROOT)

    @classmethod
    def link(cls, name: str) -> Need:
        return cls(NeedKind.LINK, name)

    @classmethod
    def protocol(cls, server: str) -> Need:
        return cls(NeedKind.PROTOCOL, server)

    @classmethod
    def restart(cls, service: str) -> Need:
        return cls(NeedKind.RESTART, service)

    @classmethod
    def move(cls, service: str) -> Need:
        return cls(NeedKind.MOVE, service)

    @classmethod
    def replica(cls, server: str) -> Need:
        return cls(NeedKind.REPLICA, server)

    @classmethod
    def admin(cls, server: str) -> Need:
        return cls(NeedKind.ADMIN, server)

    @classmethod
    def files(cls, server: str) -> Need:
        return cls(NeedKind.FILES, server)

    @classmethod
    def tool(cls, name: str) -> Need:
        return cls(NeedKind.TOOL, name)

    @classmethod
    def exporter_credentials(cls) -> Need:
        return cls(NeedKind.CREDENTIALS, "exporter")

    @classmethod
    def api(cls, name: str) -> Need:
        return cls(NeedKind.API, name)

    @classmethod
    def preload(cls, library: str) -> Need:
        return cls(NeedKind.PRELOAD, library)

    @classmethod
    def device(cls, name: str) -> Need:
        return cls(NeedKind.DEVICE, name)

    @classmethod
    def sink(cls, name: str) -> Need:
        return cls(NeedKind.SINK, name)

    @classmethod
    def own(cls, name: str) -> Need:
        return cls(NeedKind.OWN, name)


Needs = frozenset[Need]
