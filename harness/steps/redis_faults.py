"""Redis answering with errors while the link is fine, applied through its own admin commands
(CONFIG SET, REPLICAOF, ACL SETUSER, CLIENT PAUSE) and undone when the window ends. Each reads
the server's answer back as evidence: a write made as the exporter's user is refused."""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast

import redis
from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.errors import HarnessError
from harness.infra.credentials import provision_redis
from harness.infra.redis_client import direct_client
from harness.infra.waiting import WaitTimeout, wait_for
from harness.model.capabilities import Need
from harness.services.executor import free_port
from harness.steps.base import STRICT, Background, StepKind, World
from harness.steps.registry import step_kind

if TYPE_CHECKING:
    from harness.report.journal import StepRecord
    from harness.steps.context import StepContext

ADMIN_TIMEOUT_S = 5.0


def admin(run: StepContext) -> redis.Redis:
    return direct_client(run.stack.admin_url("redis"), timeout=ADMIN_TIMEOUT_S)


def as_exporter(run: StepContext, timeout: float = 1.0) -> redis.Redis:
    """A client with the exporter's own credentials, straight to the server: what it would be told."""
    return direct_client(run.stack.exporter_redis_url(proxied=False), timeout=timeout)


def probe_write(run: StepContext, timeout: float = 1.0) -> str:
    """What a write as the exporter's user gets now: ``OK`` or the server's refusal."""
    client = as_exporter(run, timeout)
    try:
        client.set(f"faultline:probe:{run.ctx.namespace}", "1")
        return "OK"
    except redis.TimeoutError:
        return f"no answer within {timeout}s"
    except redis.RedisError as exc:
        return f"{exc.__class__.__name__}: {exc}"
    finally:
        client.close()


def _admin_call(run: StepContext, what: str, *command: Any) -> Any:
    client = admin(run)
    try:
        return client.execute_command(*command)
    except redis.RedisError as exc:
        raise HarnessError(f"redis: cannot {what}: {exc.__class__.__name__}: {exc}") from exc
    finally:
        client.close()


def _config_get(run: StepContext, key: str) -> str:
    client = admin(run)
    try:
        return str(client.config_get(key)[key])
    except (redis.RedisError, KeyError) as exc:
        raise HarnessError(f"redis: cannot read {key}: {exc.__class__.__name__}: {exc}") from exc
    finally:
        client.close()


def _snapshot(run: StepContext, writable: bool) -> None:
    """Take a snapshot with the data directory made immutable (it fails: Redis then refuses writes
    with MISCONF) or writable again (it succeeds: writes are accepted again)."""
    from harness.steps.disk import run_command

    directory = run.stack.backend.service_data_dir("redis")
    run_command(["chattr", "-i" if writable else "+i", str(directory)],
                f"make {directory} {'writable' if writable else 'immutable'}")
    _admin_call(run, "start a snapshot", "BGSAVE")
    wanted = "ok" if writable else "err"

    def done() -> bool:
        client = admin(run)
        try:
            info = client.info("persistence")
        finally:
            client.close()
        return not info.get("rdb_bgsave_in_progress") and info.get("rdb_last_bgsave_status") == wanted

    wait_for(done, timeout=15, interval=0.05, what=f"redis's snapshot to end {wanted}")


@step_kind
@dataclass(frozen=True, config=STRICT)
class RedisRefuseWrites(StepKind):
    """Redis refuses every write for the window: ``oom`` (maxmemory 1 with noeviction),
    ``noreplicas`` (min-replicas-to-write 1 with none attached), ``readonly`` (made a replica of
    a master that does not exist; its data stays) or ``misconf`` (a snapshot that cannot be
    written: its directory made immutable, then BGSAVE; needs root and its data on this machine)."""

    kind_name: ClassVar[str] = "redis_refuse_writes"
    reason: Literal["oom", "noreplicas", "readonly", "misconf"] = "oom"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> RedisRefuseWrites:
        return cls(reason=rng.choice(("oom", "noreplicas", "readonly", "misconf")))

    def describe(self) -> str:
        return f"redis refuses writes ({self.reason})"

    def needs(self) -> frozenset[Need]:
        on_disk = {Need.root(), Need.files("redis")} if self.reason == "misconf" else set()
        return frozenset({Need.admin("redis"), *on_disk})

    def _settings(self) -> dict[str, str]:
        if self.reason == "oom":
            return {"maxmemory-policy": "noeviction", "maxmemory": "1"}
        if self.reason == "noreplicas":
            return {"min-replicas-to-write": "1", "min-replicas-max-lag": "10"}
        if self.reason == "misconf":
            return {"save": "3600 1", "stop-writes-on-bgsave-error": "yes"}
        return {}

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        settings = self._settings()
        saved = {key: _config_get(run, key) for key in settings}
        run.closers.append(lambda: self._restore(run, saved))  # undone whatever happens before remove
        for key, value in settings.items():
            _admin_call(run, f"set {key}", "CONFIG", "SET", key, value)
        if self.reason == "readonly":
            _admin_call(run, "make it a replica", "REPLICAOF", "127.0.0.1", str(free_port()))
        if self.reason == "misconf":
            _snapshot(run, writable=False)
        record.evidence = f"a write as the exporter's user: {probe_write(run)}"
        return saved

    def remove(self, run: StepContext, handle: dict[str, Any], record: StepRecord) -> None:
        self._restore(run, handle)
        record.evidence += f"; after: {probe_write(run)}"

    def _restore(self, run: StepContext, saved: dict[str, Any]) -> None:
        if self.reason == "readonly":
            _admin_call(run, "make it a master again", "REPLICAOF", "NO", "ONE")
        if self.reason == "misconf":
            _snapshot(run, writable=True)
        for key, value in saved.items():
            _admin_call(run, f"restore {key}", "CONFIG", "SET", key, value)


@step_kind
@dataclass(frozen=True, config=STRICT)
class RedisDenyCommands(StepKind):
    """The exporter's ACL user is denied these commands for the window (NOPERM); the harness's
    own user is untouched, so its reads still see everything."""

    kind_name: ClassVar[str] = "redis_deny_commands"
    # A list in an incident file (TOML has no tuples): only this field is lenient about that.
    commands: Annotated[tuple[Annotated[str, Field(pattern=r"^[A-Za-z|]{1,40}$")], ...],
                        Field(strict=False, min_length=1, max_length=100)] = ("xadd",)

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> RedisDenyCommands:
        return cls(commands=rng.choice((("xadd",), ("xack",), ("xreadgroup",), ("xadd", "xack"))))

    def describe(self) -> str:
        return f"redis denies the exporter {', '.join(self.commands)}"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("redis"), Need.exporter_credentials()})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        creds = run.stack.exporter
        assert creds is not None, "needs credentials:exporter"
        run.closers.append(lambda: provision_redis(run.stack, creds))
        _admin_call(run, "change the exporter's ACL", "ACL", "SETUSER", creds.redis_user,
                    *(f"-{c.lower()}" for c in self.commands))
        client = admin(run)
        try:
            rules = client.acl_getuser(creds.redis_user) or {}
        finally:
            client.close()
        record.evidence = f"ACL of {creds.redis_user}: {rules.get('commands', '?')}"

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        assert run.stack.exporter is not None
        provision_redis(run.stack, run.stack.exporter)


@step_kind
@dataclass(frozen=True, config=STRICT)
class RedisClientPause(StepKind):
    """``CLIENT PAUSE``: every client stalls (``all``) or only writes do (``write``) for the window."""

    kind_name: ClassVar[str] = "redis_client_pause"
    mode: Literal["write", "all"] = "write"

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> RedisClientPause:
        return cls(mode=rng.choice(("write", "all")))

    def describe(self) -> str:
        return f"redis clients paused ({self.mode})"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("redis")})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        window_s = record.window_s or run.scenario.during_s
        # CLIENT PAUSE ALL holds every command, CLIENT UNPAUSE too, even on the connection that
        # paused (Redis 7.0; found by explore): an ALL pause is given exactly its window and ends by
        # itself. A WRITE pause is given more and ended by remove(), on time.
        timeout_ms = int(window_s * 1000) + (0 if self.mode == "all" else 5000)
        if self.mode == "write":
            run.closers.append(lambda: _admin_call(run, "unpause clients", "CLIENT", "UNPAUSE"))
        _admin_call(run, "pause clients", "CLIENT", "PAUSE", str(timeout_ms), self.mode.upper())
        record.evidence = f"a write as the exporter's user: {probe_write(run, timeout=0.5)}"
        return time.monotonic() + timeout_ms / 1000

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        if self.mode == "write":
            _admin_call(run, "unpause clients", "CLIENT", "UNPAUSE")
        else:
            _wait_for_pause_end(run, float(handle))
        record.evidence += f"; after: {probe_write(run)}"


def _wait_for_pause_end(run: StepContext, ends_at: float) -> None:
    """An ALL pause ends at its own deadline: wait for Redis to answer again (a bounded poll)."""
    def answers() -> bool:
        client = direct_client(run.stack.admin_url("redis"), timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    try:
        wait_for(answers, timeout=max(0.0, ends_at - time.monotonic()) + ADMIN_TIMEOUT_S, interval=0.1,
                 what="redis to end its client pause")
    except WaitTimeout as exc:
        raise HarnessError(f"redis: the client pause did not end: {exc}") from exc


def auth_failures(run: StepContext, user: str) -> int:
    """Failed logins of ``user`` that Redis's ACL LOG counted (repeats are folded into a count)."""
    client = admin(run)
    try:
        entries: list[dict[str, Any]] = cast(Any, client.acl_log(count=128))
    except redis.RedisError as exc:
        raise HarnessError(f"redis: cannot read the ACL log: {exc}") from exc
    finally:
        client.close()
    return sum(int(str(e.get("count", 1))) for e in entries
               if e.get("reason") == "auth" and e.get("username") == user)


@step_kind
@dataclass(frozen=True, config=STRICT)
class RedisRefuseConnections(StepKind):
    """The first ``count`` logins of the exporter's user fail (the user is disabled), then it is
    enabled again and every later one succeeds: a fault that passes after some attempts."""

    kind_name: ClassVar[str] = "redis_refuse_connections"
    count: Annotated[int, Field(ge=1, le=100_000)] = 3

    @classmethod
    def draw(cls, rng: random.Random, world: World) -> RedisRefuseConnections:
        return cls(count=rng.choice((1, 3, 10)))

    def describe(self) -> str:
        return f"redis refuses the exporter's first {self.count} logins"

    def needs(self) -> frozenset[Need]:
        return frozenset({Need.admin("redis"), Need.exporter_credentials()})

    def apply(self, run: StepContext, record: StepRecord) -> Any:
        creds = run.stack.exporter
        assert creds is not None, "needs credentials:exporter"
        _admin_call(run, "reset the ACL log", "ACL", "LOG", "RESET")
        run.closers.append(lambda: provision_redis(run.stack, creds))
        _admin_call(run, "disable the exporter's user", "ACL", "SETUSER", creds.redis_user, "off")
        # Its open connections stay logged in: they must break (a restart, a failover) to meet this.
        _admin_call(run, "end the exporter's connections", "CLIENT", "KILL", "USER", creds.redis_user)
        seen = [0]

        def watch(stop: threading.Event) -> None:
            while not stop.wait(0.05):
                seen[0] = auth_failures(run, creds.redis_user)
                if seen[0] >= self.count:
                    provision_redis(run.stack, creds)
                    return

        watching = Background(run, "refuse-logins", watch)
        record.evidence = f"user {creds.redis_user} disabled; a login now: {probe_write(run)}"
        return watching, seen

    def remove(self, run: StepContext, handle: Any, record: StepRecord) -> None:
        watching, seen = handle
        watching.stop()
        assert run.stack.exporter is not None
        provision_redis(run.stack, run.stack.exporter)
        record.evidence += f"; {seen[0]} login(s) refused before it was enabled again"
