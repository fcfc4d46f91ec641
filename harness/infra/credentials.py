"""The exporter's own credentials, apart from the harness's: a Postgres role, a Redis ACL user
and a Kafka client id. A fault aimed at the exporter (an ACL that denies it XADD, a connection
limit of 0 on its role, a quota on its client id) then never blinds the harness, whose reads
go through the administrator's credentials.

The target definition passes them to the exporter through its placeholders
(``{postgres_dsn}``, ``{redis_url}``, ``{kafka_client_id}``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
import redis
from psycopg import sql

from harness.errors import HarnessError
from harness.infra.redis_client import no_retry


class AdminAccess(Protocol):
    """What setting up the exporter's credentials needs of a stack (harness.infra.stack.Stack): the
    administrator's direct access. A protocol, so that credentials (below) never import the stack."""

    postgres_user: str
    postgres_database: str
    exporter: ExporterCredentials | None

    def postgres_dsn(self, proxied: bool = True) -> str: ...
    def redis_url(self, proxied: bool = True) -> str: ...

POSTGRES_ROLE = "faultline_exporter"
REDIS_USER = "exporter"
KAFKA_CLIENT_ID = "faultline-exporter"


class CredentialsError(HarnessError):
    """The exporter's credentials could not be created or restored on a server."""


@dataclass(frozen=True)
class ExporterCredentials:
    postgres_user: str = POSTGRES_ROLE
    postgres_password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    redis_user: str = REDIS_USER
    redis_password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    kafka_client_id: str = KAFKA_CLIENT_ID

    def redis_acl(self) -> list[str]:
        """The user's full rights (every key, channel and command): what ``ACL SETUSER`` restores."""
        return [self.redis_user, "reset", "on", f">{self.redis_password}", "~*", "&*", "+@all"]

    def redis_user_directive(self) -> list[str]:
        """The same rights as ``--user`` server arguments (one word each: redis-server joins them
        into a config line), so that a restarted Redis keeps them."""
        return ["--user", *(word for word in self.redis_acl() if word != "reset")]


def provision(stack: AdminAccess) -> None:
    """Create (or restore) the exporter's role and user with their full rights. Idempotent and
    cheap: ``Stack.reset`` calls it, so a fault that took a right away is always undone."""
    if stack.exporter is None:
        return  # the exporter shares the harness's credentials (an external stack that names no others)
    provision_postgres(stack, stack.exporter)
    provision_redis(stack, stack.exporter)


def provision_postgres(stack: AdminAccess, creds: ExporterCredentials) -> None:
    role = sql.Identifier(creds.postgres_user)
    try:
        with psycopg.connect(stack.postgres_dsn(proxied=False), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (creds.postgres_user,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT -1").format(
                verb, role, sql.Literal(creds.postgres_password)))
            conn.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(role))  # read-only, timeouts: gone
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(stack.postgres_database), role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
            # Tables the harness creates later (each run's source table) are readable too.
            conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}")
                         .format(sql.Identifier(stack.postgres_user), role))
    except psycopg.Error as exc:
        raise CredentialsError(f"postgres: cannot set up role {creds.postgres_user}: {exc}") from exc


def provision_redis(stack: AdminAccess, creds: ExporterCredentials) -> None:
    client = redis.Redis.from_url(stack.redis_url(proxied=False), socket_timeout=5, socket_connect_timeout=5,
                                  retry=no_retry())
    try:
        client.execute_command("ACL", "SETUSER", *creds.redis_acl())
    except redis.RedisError as exc:
        raise CredentialsError(f"redis: cannot set up ACL user {creds.redis_user}: {exc}") from exc
    finally:
        client.close()
