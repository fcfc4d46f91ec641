"""The harness's own Kafka clients (admin, consumers, producers): one configuration, whose logs
go through Python logging (``faultline.kafka``) instead of raw to stderr.

librdkafka writes its log lines to stderr itself unless it is given a logger: while a broker is
down, an explore's terminal filled with hundreds of ``%3|...|FAIL|rdkafka#consumer-289| ...
Connection refused`` lines from the reconciler and the failover steps. With a logger they are
queued and handed to ``faultline.kafka`` at the client's next poll, at the level the user chose
(``FAULTLINE_KAFKA_LOG_LEVEL``: a logging level name; by default none is shown).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from harness.errors import HarnessError

KAFKA_LOG = logging.getLogger("faultline.kafka")
LEVEL_ENV = "FAULTLINE_KAFKA_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "OFF")


def kafka_log_level() -> int:
    """The level the user chose for the harness's Kafka clients' logs (OFF, the default: none)."""
    name = os.environ.get(LEVEL_ENV, "OFF").strip().upper()
    if name not in LEVELS:
        raise HarnessError(f"{LEVEL_ENV}={name!r} is not a level: one of {', '.join(LEVELS)}")
    return logging.CRITICAL + 10 if name == "OFF" else int(getattr(logging, name))


def kafka_config(bootstrap: str, **settings: Any) -> dict[str, Any]:
    """A client configuration for ``bootstrap`` with ``settings`` (librdkafka's names, dotted:
    pass them as a dict with ``**``), logging through ``faultline.kafka``."""
    KAFKA_LOG.setLevel(kafka_log_level())
    return {"bootstrap.servers": bootstrap, "logger": KAFKA_LOG, **settings}


def show_kafka_logs() -> None:
    """Validate the chosen level now (bad input is exit 2 before anything starts) and, when the
    user chose one, print what passes it on stderr, one line each."""
    if kafka_log_level() <= logging.CRITICAL and not KAFKA_LOG.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("faultline: kafka client %(levelname)s: %(message)s"))
        KAFKA_LOG.addHandler(handler)
        KAFKA_LOG.propagate = False
