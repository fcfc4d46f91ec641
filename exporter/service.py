"""The exporter process: pipeline threads, pause control, jobs, and their lifecycle."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.process import BaseProcess
from typing import Any

import psycopg
import redis
from confluent_kafka.admin import AdminClient
from prometheus_client import multiprocess

from exporter import defects, metrics
from exporter.buffer import Buffer
from exporter.config import Config
from exporter.control import Control
from exporter.durability import durability_problem
from exporter.errors import ExporterError
from exporter.jobs import JobManager
from exporter.pausing import PAUSE_STATUS_TIMEOUT_S, Pauser
from exporter.pipeline import WORKERS, MetadataPoller, worker_main

log = logging.getLogger("exporter.service")
READY_CACHE_S = 1.0  # readiness is looked at no more often than this


class Service:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.mp = multiprocessing.get_context("spawn")
        self.control = Control(self.mp)
        self.workers: dict[str, BaseProcess] = {}
        self.poller = MetadataPoller(config, self.control)
        self.supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self.status_buffer = Buffer(config)
        self.pauser = Pauser(self.control, Buffer(config, timeout_s=PAUSE_STATUS_TIMEOUT_S))
        self.jobs = JobManager(config)
        self._ready_lock = threading.Lock()
        self._ready: tuple[float, dict[str, dict[str, Any]]] | None = None  # (when looked, what was seen)
        self._admin: AdminClient | None = None

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        defects.announce(log)
        log.info("exporter starting", extra={"sink": self.config.sink, "topic": self.config.topic,
                                             "source_table": self.config.source_table})
        metrics.expose_from_start(("kafka", "file") if self.config.sink == "both" else (self.config.sink,),
                                  tuple(WORKERS))
        for kind in WORKERS:
            self._start_worker(kind)
        self.poller.start()
        self.supervisor.start()
        try:
            yield
        finally:
            self.control.stop.set()
            self.poller.join(timeout=15)
            self.supervisor.join(timeout=15)
            for kind, process in self.workers.items():
                process.join(timeout=15)
                if process.is_alive():
                    log.error("worker did not stop in time; terminating it", extra={"worker": kind})
                    process.terminate()
                    process.join(timeout=5)
            self.jobs.close()
            log.info("exporter stopped")

    def _start_worker(self, kind: str) -> None:
        process = self.mp.Process(target=worker_main, args=(kind, self.config, self.control),
                                  name=f"exporter-{kind}", daemon=True)
        process.start()
        self.workers[kind] = process

    def _supervise(self) -> None:
        """A worker that dies (a bug, the OOM killer) is logged, counted and started again."""
        while not self.control.stop.wait(0.5):
            for kind, process in list(self.workers.items()):
                if process.is_alive() or self.control.stop.is_set():
                    continue
                log.error("worker process exited; restarting it", extra={
                    "worker": kind, "exitcode": process.exitcode, "stage": f"supervisor.{kind}"})
                metrics.worker_restarts.labels(worker=kind).inc()
                multiprocess.mark_process_dead(process.pid)
                self._start_worker(kind)

    def dependency_checks(self) -> dict[str, dict[str, Any]]:
        """Readiness, looked at once per READY_CACHE_S whoever asks: /readyz is open to anyone, and
        a hundred anonymous callers each opening a Postgres session and a Kafka client slowed the
        authenticated API to seconds (and wrote 15,000 librdkafka lines into the log)."""
        with self._ready_lock:  # one look at a time; the others take its answer
            now = time.monotonic()
            if self._ready is None or now - self._ready[0] >= READY_CACHE_S:
                self._ready = (time.monotonic(), self._look_at_dependencies())
            return self._ready[1]

    def _kafka_admin(self) -> AdminClient:
        if self._admin is None:
            # One client for every look, quiet: a broker that is down is in the answer, not the log.
            self._admin = AdminClient({"bootstrap.servers": self.config.kafka_bootstrap,
                                       "socket.connection.setup.timeout.ms": 1000, "log_level": 0})
        return self._admin

    def _look_at_dependencies(self) -> dict[str, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            with psycopg.connect(self.config.postgres_dsn, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            checks["postgres"] = {"ok": True}
        except psycopg.Error as exc:
            checks["postgres"] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
        try:
            checks["redis"] = {"ok": self.status_buffer.ping()}
        except (ExporterError, redis.RedisError) as exc:
            checks["redis"] = {"ok": False, "error": str(exc)}
        if self.config.sink in ("kafka", "both"):
            try:
                brokers = self._kafka_admin().list_topics(timeout=1.5).brokers
                checks["kafka"] = {"ok": bool(brokers)}
                problem = durability_problem(self._kafka_admin(), self.config.topic,
                                             self.config.kafka_min_insync_replicas, 1.5) if brokers else None
                if problem is not None:
                    checks["kafka"] = {"ok": False, "error": problem}
            except Exception as exc:  # noqa: BLE001 - librdkafka's KafkaException and friends: reported
                checks["kafka"] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
        return checks

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {"pause": self.pauser.status.to_dict(), "defect": defects.active(),
                                "source_max_id": self.poller.source_max_id,
                                "workers": {k: p.is_alive() for k, p in self.workers.items()}}
        try:
            info["checkpoint"] = self.status_buffer.checkpoint()
            info["buffer_length"] = self.status_buffer.length()
            info["pending"] = self.status_buffer.pending_count()
        except (ExporterError, redis.RedisError) as exc:
            info["buffer_error"] = f"{exc.__class__.__name__}: {exc}"  # reported, never a 500
        return info
