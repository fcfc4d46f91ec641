"""What an incident was confirmed with: Faultline's version and the servers' own.

Asked of the running servers (Postgres and Redis report their versions); Kafka's broker does not
say its version on the wire, so the provisioned jars' version is named. A server that cannot be
asked is named "unknown" with the reason, never guessed.
"""

from __future__ import annotations

import psycopg
import redis

from harness.errors import HarnessError
from harness.infra.redis_client import direct_client
from harness.infra.stack import Stack


def server_versions(stack: Stack) -> dict[str, str]:
    versions: dict[str, str] = {}
    try:
        with psycopg.connect(stack.postgres_dsn(proxied=False), connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            if row:
                versions["postgres"] = str(row[0]).split(" ")[0]
    except psycopg.Error as exc:
        versions["postgres"] = f"unknown ({exc.__class__.__name__})"
    client = direct_client(stack.redis_url(proxied=False), 5)
    try:
        versions["redis"] = str(client.info("server")["redis_version"])
    except redis.RedisError as exc:
        versions["redis"] = f"unknown ({exc.__class__.__name__})"
    finally:
        client.close()
    try:
        from harness.provision.components import require

        versions["kafka"] = require("kafka").version
    except HarnessError:
        versions["kafka"] = "unknown (not provisioned here)"  # an external or docker broker
    return versions
