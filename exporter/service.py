"""The exporter process: pipeline threads, pause control, jobs, and their lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient

from exporter import defects
from exporter.buffer import Buffer
from exporter.config import Config
from exporter.errors import TransientError
from exporter.jobs import JobManager
from exporter.pausing import Pauser
from exporter.pipeline import Control, Deliverer, MetadataPoller, Reader

log = logging.getLogger("exporter.service")


class Service:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.control = Control()
        self.reader = Reader(config, self.control)
        self.deliverer = Deliverer(config, self.control)
        self.poller = MetadataPoller(config, self.control)
        self.status_buffer = Buffer(config)
        self.pauser = Pauser(self.control, Buffer(config))
        self.jobs = JobManager(config)

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        defects.announce(log)
        log.info("exporter starting", extra={"sink": self.config.sink, "topic": self.config.topic,
                                             "source_table": self.config.source_table})
        for thread in (self.reader, self.deliverer, self.poller):
            thread.start()
        try:
            yield
        finally:
            self.control.stop.set()
            for thread in (self.reader, self.deliverer, self.poller):
                thread.join(timeout=15)
                if thread.is_alive():
                    log.error("thread did not stop in time", extra={"thread": thread.name})
            log.info("exporter stopped")

    def dependency_checks(self) -> dict[str, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            with psycopg.connect(self.config.postgres_dsn, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            checks["postgres"] = {"ok": True}
        except psycopg.Error as exc:
            checks["postgres"] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
        try:
            checks["redis"] = {"ok": self.status_buffer.ping()}
        except TransientError as exc:
            checks["redis"] = {"ok": False, "error": str(exc)}
        if self.config.sink in ("kafka", "both"):
            admin = AdminClient({"bootstrap.servers": self.config.kafka_bootstrap,
                                 "socket.connection.setup.timeout.ms": 1000})
            try:
                brokers = admin.list_topics(timeout=1.5).brokers
                checks["kafka"] = {"ok": bool(brokers)}
            except Exception as exc:  # noqa: BLE001 - librdkafka's KafkaException and friends: reported
                checks["kafka"] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
        return checks

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {"pause": self.pauser.status.to_dict(), "defect": defects.active(),
                                "checkpoint": self.reader.checkpoint, "source_max_id": self.poller.source_max_id}
        try:
            info["buffer_length"] = self.status_buffer.length()
            info["pending"] = self.status_buffer.pending_count()
        except TransientError as exc:
            info["buffer_error"] = str(exc)
        return info
