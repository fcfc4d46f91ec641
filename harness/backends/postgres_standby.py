"""A Postgres streaming standby for the local backend: copied from the primary with
``pg_basebackup`` through a Toxiproxy link of its own (``postgres-replication``: cutting it
leaves the standby behind while clients still write to the primary), promoted in a failover, and
put away again between scenarios.

Two failovers, as operators make them:
- planned (``lag = "none"``, a switchover): the primary is shut down cleanly first (a fast
  shutdown sends every WAL record to its standbys before it exits), then the standby promoted:
  nothing committed is lost;
- unplanned (``lag = "cut"``): the replication link was cut, the primary is killed and stays down
  (fenced: never two primaries), the standby promoted with what it had: transactions the primary
  committed after the cut are gone. Replication slots stay behind too: before PostgreSQL 17 a
  slot is never copied to a standby, so a CDC connector's slot does not exist on the new primary.

The old primary stays down (fenced) until the topology is put away, when it serves again with
everything it had; or it rejoins: rewound onto the new primary's timeline with ``pg_rewind`` and
started as its standby (what it had that the new primary never got thrown away), and promoted back
when the topology is put away.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import HarnessError, ServiceStartError
from harness.infra.toxiproxy import ToxiproxyClient
from harness.infra.waiting import wait_for
from harness.provision import require
from harness.services.executor import ServiceExecutor, free_port
from harness.services.servers import HOST, PostgresServer, _chown_for_child, _drop_privileges, remove_tree

REPLICATION = "postgres-replication"
BACK = "postgres-replication-back"  # the new primary -> the old primary rejoined as its standby
CATCH_UP_TIMEOUT_S = 60.0


def query(server: PostgresServer, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """One value from ``server``'s own database (direct, as its administrator)."""
    with psycopg.connect(host=HOST, port=server.port, user=server.user, password=server.password,
                         dbname=server.database, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


@dataclass
class PostgresStandby:
    """The standby of ``primary``, its replication proxy, and whether it was promoted."""

    primary: PostgresServer
    toxiproxy: ToxiproxyClient
    workdir: Path
    start_timeout: float
    server: PostgresServer | None = None
    executor: ServiceExecutor | None = None
    promoted: bool = False

    def start(self) -> dict[str, Any]:
        listen_port = free_port()
        self.toxiproxy.create_proxy(REPLICATION, f"{HOST}:{listen_port}", f"{HOST}:{self.primary.port}")
        root = self.workdir / "postgres-standby"
        remove_tree(root)
        self.server = PostgresServer("postgres-standby", root, free_port(), start_timeout=self.start_timeout,
                                     user=self.primary.user, database=self.primary.database,
                                     password=self.primary.password,
                                     # pg_rewind reads from it after a promotion, and wants full pages.
                                     settings=(*self.primary.settings, "full_page_writes=on"))
        self._base_backup(root, listen_port)
        self.executor = self.server.executor()
        self.executor.start()
        self.wait_caught_up()
        return {"standby": f"{HOST}:{self.server.port}", "replicating_through": f"{HOST}:{listen_port}",
                "in_recovery": bool(query(self.server, "SELECT pg_is_in_recovery()"))}

    def _base_backup(self, root: Path, port: int) -> None:
        """The primary's data copied through the replication proxy, with ``-R``: the copy starts as
        a standby streaming from there (its connection settings hold the password: 0600, its own)."""
        root.mkdir(parents=True)
        (root / "sockets").mkdir()
        _chown_for_child(root)
        os.chmod(root, 0o700)
        conninfo = (f"host={HOST} port={port} user={self.primary.user} password={self.primary.password} "
                    f"dbname=replication")
        bindir = Path(require("postgres").path)
        proc = subprocess.run([str(bindir / "pg_basebackup"), "-d", conninfo, "-D", str(root / "data"), "-X", "stream",
                               "-R", "-c", "fast", "--no-sync"],
                              capture_output=True, text=True, check=False, timeout=120, **_drop_privileges())
        if proc.returncode != 0:
            raise ServiceStartError("postgres-standby", f"pg_basebackup failed ({proc.returncode}): "
                                    f"{proc.stderr.strip()[-1000:]}")

    def lag_bytes(self) -> int:
        """How far the standby's replay is behind the primary's current WAL position."""
        assert self.server is not None
        primary_lsn = query(self.primary, "SELECT pg_current_wal_lsn()::text")
        return int(query(self.server, "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())",
                         (primary_lsn,)) or 0)

    def wait_caught_up(self, lsn: str | None = None) -> None:
        """Until the standby replayed the primary's current position (or ``lsn``)."""
        assert self.server is not None
        server = self.server
        target = lsn or query(self.primary, "SELECT pg_current_wal_lsn()::text")
        wait_for(lambda: query(server, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)),
                 timeout=CATCH_UP_TIMEOUT_S, interval=0.1, what=f"the Postgres standby to replay up to {target}")

    def streaming(self) -> bool:
        """Whether its WAL receiver is streaming from the primary now."""
        assert self.server is not None
        return query(self.server, "SELECT status FROM pg_stat_wal_receiver") == "streaming"

    def cut(self, cut: bool) -> None:
        self.toxiproxy.proxy(REPLICATION).set_enabled(not cut)

    def wait_replayed_received(self) -> None:
        """Until the standby replayed all it received (after a clean shutdown of the primary sent it all)."""
        assert self.server is not None
        server = self.server
        wait_for(lambda: query(server, "SELECT pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()"),
                 timeout=CATCH_UP_TIMEOUT_S, interval=0.1, what="the Postgres standby to replay what it received")

    def promote(self, primary_lsn: str | None) -> dict[str, Any]:
        """Promote the standby (the primary already stopped or killed); the WAL gap as evidence."""
        if self.server is None:
            raise HarnessError("postgres failover: no standby is running")
        replayed = query(self.server, "SELECT pg_last_wal_replay_lsn()::text")
        gap = (int(query(self.server, "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (primary_lsn, replayed)))
               if primary_lsn else None)
        if not query(self.server, "SELECT pg_promote(true, 60)"):
            raise HarnessError(f"postgres failover: the standby at {HOST}:{self.server.port} did not promote in 60 s")
        self.promoted = True
        return {"promoted": f"{HOST}:{self.server.port}", "old_primary_lsn": primary_lsn, "standby_lsn": replayed,
                "gap_bytes": gap, "in_recovery_after": bool(query(self.server, "SELECT pg_is_in_recovery()"))}

    def rewind(self, old: PostgresServer) -> dict[str, Any]:
        """The old primary (stopped) rewound onto the promoted standby's timeline with
        ``pg_rewind``, set to stream from it through a proxy of its own (``-R``): started, it is
        the new primary's standby. What it had that the new primary never got is thrown away."""
        if self.server is None or not self.promoted:
            raise HarnessError("postgres rejoin: no standby was promoted")
        # A promoted server's control file names its new timeline only after a checkpoint; before
        # it, pg_rewind sees one timeline and rewinds nothing.
        with psycopg.connect(host=HOST, port=self.server.port, user=self.server.user, password=self.server.password,
                             dbname=self.server.database, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CHECKPOINT")
        # pg_rewind first finishes a killed server's crash recovery in single-user mode, which reads
        # postgresql.conf only (not the -c settings it ran with) and records its settings in the
        # control file that pg_rewind then checks: the hint-bit logging must be in the file too, and
        # the settings the server ran with (wal_level=logical: a CDC connector's slot on it makes a
        # recovery at a lower level refuse to start, found against Debezium Server).
        with (old.root / "data" / "postgresql.conf").open("a") as conf:
            conf.write("\n# faultline: the server ran with these; pg_rewind's recovery must too\n"
                       "wal_log_hints = on\nwal_keep_size = 256MB\n"
                       + "".join(f"{setting}\n" for setting in old.settings))
        back = free_port()
        self.toxiproxy.create_proxy(BACK, f"{HOST}:{back}", f"{HOST}:{self.server.port}")
        source = (f"host={HOST} port={back} user={self.server.user} password={self.server.password} "
                  f"dbname={self.server.database}")
        bindir = Path(require("postgres").path)
        proc = subprocess.run([str(bindir / "pg_rewind"), "--target-pgdata", str(old.root / "data"),
                               "--source-server", source, "--write-recovery-conf", "--no-sync", "--progress"],
                              capture_output=True, text=True, check=False, timeout=120, **_drop_privileges())
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            raise HarnessError(f"postgres rejoin: pg_rewind failed ({proc.returncode}): {output[-1000:]}")
        return {"rewound": output.splitlines()[-1] if output else "", "streams_through": f"{HOST}:{back}"}

    def put_away(self) -> None:
        if self.executor is not None:
            self.executor.kill()
        self.executor, self.promoted = None, False
        existing = self.toxiproxy.proxies()
        for name in (REPLICATION, BACK):
            if name in existing:
                self.toxiproxy.delete_proxy(name)


def position(primary: PostgresServer) -> tuple[str | None, dict[str, int]]:
    """The primary's WAL position and every sequence's last value (None, {}: it cannot be asked)."""
    try:
        with psycopg.connect(host=HOST, port=primary.port, user=primary.user, password=primary.password,
                             dbname=primary.database, autocommit=True, connect_timeout=5) as conn:
            lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            rows = conn.execute("SELECT format('%I.%I', schemaname, sequencename), last_value "
                                "FROM pg_sequences WHERE last_value IS NOT NULL").fetchall()
    except psycopg.Error:
        return None, {}
    return (lsn[0] if lsn else None), {name: int(value) for name, value in rows}


SEQUENCE_MARGIN = 1000  # ids the old primary may have handed out between the read and its end


def carry_sequences(server: PostgresServer, sequences: dict[str, int]) -> int:
    """Every sequence on the promoted standby moved past where the old primary had it (plus a
    margin): why the harness does what no failover does is in README ("ids stay unique")."""
    with psycopg.connect(host=HOST, port=server.port, user=server.user, password=server.password,
                         dbname=server.database, autocommit=True, connect_timeout=5) as conn:
        for name, value in sequences.items():
            conn.execute("SELECT setval(%s::regclass, greatest(%s, (SELECT last_value FROM pg_sequences "
                         "WHERE format('%%I.%%I', schemaname, sequencename) = %s)))",
                         (name, value + SEQUENCE_MARGIN, name))
    return len(sequences)
