"""Batch export jobs: a filtered query written as CSV or JSON lines to a file or a Kafka topic.

Files are written under a temporary name, fsynced and renamed into place only when complete,
so a reader never sees a half file under the final name. Encoding is strict: a row that
cannot be encoded goes to the dead-letter stream with its reason; disk full and permission
denied fail the job with a clear error and remove the temporary file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import psycopg
from confluent_kafka import Producer
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from exporter import metrics
from exporter.buffer import Buffer, DeadLetter
from exporter.config import Config
from exporter.encoding import decode_payload, encode_text
from exporter.errors import ExporterError, JobError, PermanentRecordError, TransientError
from exporter.files import append_durably, fsync_dir
from exporter.source import SESSION_OPTIONS, within_deadline

log = logging.getLogger("exporter.jobs")


class QuotaExceeded(ExporterError):
    """HTTP 429."""


class DiskGuardRefused(ExporterError):
    """HTTP 503."""


class DestinationRefused(ExporterError):
    """HTTP 403: a topic not on the allow-list."""


class DestinationExists(ExporterError):
    """HTTP 409: the file exists and the request did not ask to overwrite it."""


@dataclass
class JobSpec:
    user: str
    format: str  # csv | jsonl
    encoding: str
    destination_kind: str  # file | kafka
    destination: str  # a file name inside the export dir, or a topic
    min_id: int | None = None
    max_id: int | None = None
    key_prefix: str | None = None
    overwrite: bool = False


ERROR_KEPT_CHARS = 500  # a finished job's error, as remembered
# Marks a job's statements on the source table (Postgres keeps the comment in pg_stat_statements):
# a job is the operator's request, not the pipeline, and a pause does not stop it; the target
# definition names this mark so that a pause's check tells the job's reads from the pipeline's.
JOB_MARK = "/* export job */ "


@dataclass
class Job:
    id: str
    spec: JobSpec
    state: str = "queued"  # queued | running | completed | failed
    rows_total: int = 0
    rows_written: int = 0
    rows_dead_lettered: int = 0
    error: str | None = None
    path: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict:
        """What the API answers, and all that is kept of a finished job (never its whole spec)."""
        data = {k: v for k, v in asdict(self).items() if k != "spec"}
        data.update(user=self.spec.user, destination_kind=self.spec.destination_kind,
                    destination=self.spec.destination, error=(self.error or "")[:ERROR_KEPT_CHARS] or None)
        return data


def _where(spec: JobSpec) -> tuple[sql.Composable, list]:
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list = []
    if spec.min_id is not None:
        clauses.append(sql.SQL("id >= %s"))
        params.append(spec.min_id)
    if spec.max_id is not None:
        clauses.append(sql.SQL("id <= %s"))
        params.append(spec.max_id)
    if spec.key_prefix:
        # A comparison, not LIKE: a pattern needs every special character escaped (a backslash
        # left alone made "k\\1" select every "k1..." row); a prefix compared as text needs none.
        clauses.append(sql.SQL("left(key, char_length(%s)) = %s"))
        params += [spec.key_prefix, spec.key_prefix]
    return sql.SQL(" AND ").join(clauses), params


JOB_WORKERS = 4  # jobs run at most this many at once; the rest wait as "queued"


class JobManager:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.jobs: dict[str, Job] = {}  # queued or running
        # Finished jobs as summaries, oldest first, bounded by count and age (config.jobs_kept*).
        self.finished: OrderedDict[str, dict] = OrderedDict()
        self._finished_of: dict[str, deque[str]] = defaultdict(deque)  # user -> their finished ids, oldest first
        self._started: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._quota_lock = threading.RLock()  # taken inside _lock too (submit's second look)
        # Bounded: a burst of submissions queues jobs instead of starting a thread and two
        # connections each (hundreds per second would starve the pipeline of CPU).
        self._workers = ThreadPoolExecutor(max_workers=JOB_WORKERS, thread_name_prefix="export-job")
        # Pooled connections: one a fault broke fails its request (503, the client retries) and
        # the pool discards it when it comes back in a bad state. Opened lazily: the API answers
        # even while Postgres is down.
        # Autocommit: a count is one round trip, not BEGIN, query and COMMIT (the export's server-side
        # cursor opens its own transaction).
        self.pool = ConnectionPool(config.postgres_dsn, min_size=0, max_size=JOB_WORKERS + 8, open=False,
                                   timeout=config.postgres_timeout_s,
                                   kwargs={"connect_timeout": max(1, int(config.postgres_timeout_s)),
                                           "autocommit": True, "options": SESSION_OPTIONS},
                                   name="export-jobs")
        self._pool_opened = False
        self.buffer = Buffer(config)  # thread-safe (redis-py pools its connections)

    def _connection(self):  # noqa: ANN202 - the pool's context manager
        with self._lock:
            if not self._pool_opened:
                self.pool.open(wait=False)
                self._pool_opened = True
        return self.pool.connection()

    def close(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)
        if self._pool_opened:
            self.pool.close(timeout=5)
        self.buffer.close()

    # -- what clients may see ----------------------------------------------------------------------
    def lookup(self, job_id: str, user: str) -> dict | None:
        """A job of ``user``'s (another user's is as good as absent)."""
        with self._lock:
            job = self.jobs.get(job_id)
            found = job.to_dict() if job is not None else self.finished.get(job_id)
        return found if found is not None and found["user"] == user else None

    def listing(self, user: str) -> list[dict]:
        with self._lock:
            return [j.to_dict() for j in self.jobs.values() if j.spec.user == user] + [
                j for j in self.finished.values() if j["user"] == user]

    def _finish(self, job: Job) -> None:
        with self._lock:
            self.jobs.pop(job.id, None)
            self.finished[job.id] = summary = job.to_dict()
            self._finished_of[summary["user"]].append(job.id)
            self._trim(summary["user"], time.time())

    def _trim(self, user: str, now: float) -> None:
        """Each user's finished jobs are bounded on their own: one user's many jobs never push
        another's out (whose owner would then get a 404 for a job it just ran). In constant time
        however many are kept: it runs under the lock every poll takes (walking all of them on
        each job's end cost milliseconds with thousands kept)."""
        mine = self._finished_of[user]
        while len(mine) > self.config.jobs_kept:
            del self.finished[mine.popleft()]
        while self.finished and (next(iter(self.finished.values()))["finished_at"] or now) < now - \
                self.config.jobs_kept_s:
            _job_id, oldest = self.finished.popitem(last=False)
            theirs = self._finished_of[oldest["user"]]
            theirs.popleft()  # the oldest of all is its user's oldest too: both are in finishing order
            if not theirs:
                del self._finished_of[oldest["user"]]

    def file_path(self, spec: JobSpec) -> str:
        """Each user's exports in a directory of their own (user names are plain names)."""
        return os.path.join(self.config.export_dir, spec.user, spec.destination)

    # -- admission -------------------------------------------------------------------------------
    def _check_destination(self, spec: JobSpec) -> None:
        if spec.destination_kind == "kafka":
            if spec.destination not in self.config.allowed_export_topics:
                allowed = ", ".join(sorted(self.config.allowed_export_topics)) or "none configured"
                raise DestinationRefused(f"topic {spec.destination!r} is not one export jobs may write "
                                         f"(allowed: {allowed}; export_topics)")
            return
        self._disk_guard()
        if not spec.overwrite and os.path.exists(self.file_path(spec)):
            raise DestinationExists(f"{spec.user}/{spec.destination} exists; ask with overwrite=true to "
                                    "replace it")

    def submit(self, spec: JobSpec) -> Job:
        self._check_destination(spec)
        self._check_hourly_quota(spec.user)  # before the count: a refused user costs the source nothing
        rows = self._count(spec)
        with self._lock:
            window = self._check_hourly_quota(spec.user)  # again: others of the user's may have started meanwhile
            now = time.time()
            if rows > self.config.quota_rows_per_job:
                raise QuotaExceeded(f"the filter matches {rows} rows; user {spec.user!r} may export at most "
                                    f"{self.config.quota_rows_per_job} per job; narrow the filter")
            window.append(now)
            job = Job(id=uuid.uuid4().hex[:12], spec=spec, rows_total=rows)
            self.jobs[job.id] = job
        self._workers.submit(self._run, job)
        return job

    def _check_hourly_quota(self, user: str) -> deque[float]:
        """The user's starts in the last hour (QuotaExceeded when they reach the quota)."""
        with self._quota_lock:
            window = self._started[user]
            now = time.time()
            while window and now - window[0] > 3600:
                window.popleft()
            if len(window) >= self.config.quota_jobs_per_hour:
                retry_in = int(3600 - (now - window[0])) + 1
                raise QuotaExceeded(f"user {user!r} has started {len(window)} export jobs in the last hour "
                                    f"(quota {self.config.quota_jobs_per_hour}); retry in {retry_in}s")
            return window

    def _disk_guard(self) -> None:
        os.makedirs(self.config.export_dir, exist_ok=True)
        usage = shutil.disk_usage(self.config.export_dir)
        used = usage.used / usage.total if usage.total else 1.0
        if used > self.config.disk_usage_threshold:
            raise DiskGuardRefused(f"export dir {self.config.export_dir} is {used:.0%} full (threshold "
                                   f"{self.config.disk_usage_threshold:.0%}); free space or raise the threshold")

    def _count(self, spec: JobSpec) -> int:
        """The rows the filter matches, within the source timeout like every other read: behind a
        table lock or a stalled link the submission is refused (503), not left unanswered."""
        where, params = _where(spec)
        table = sql.Identifier(self.config.source_table)
        query = sql.SQL(JOB_MARK + "SELECT count(*) FROM {} WHERE ").format(table) + where
        # On a pooled connection: a fresh one per submission (TCP through the proxy, SCRAM, a
        # backend forked) was the job API's p99 tail under load (bench load: 400 ms, issue 30).
        try:
            with self._connection() as conn:
                return int(within_deadline(conn, lambda c: c.execute(query, params).fetchone()[0],  # type: ignore[index]
                                           self.config.postgres_timeout_s, "export_job.count"))
        except (PoolTimeout, psycopg.OperationalError) as exc:  # no connection within the timeout
            raise TransientError("export_job.count", exc) from exc

    # -- running ---------------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        job.state = "running"
        t0 = time.monotonic()
        buffer = self.buffer
        try:
            if job.spec.destination_kind == "file":
                self._to_file(job, buffer)
            else:
                self._to_kafka(job, buffer)
            job.state = "completed"
        except Exception as exc:  # noqa: BLE001 - a job thread's top: the failure is recorded, logged, visible
            # Anything else (a Kafka client error, a bug) must not leave the job 'running' forever.
            job.state = "failed"
            job.error = str(exc) if isinstance(exc, (JobError, OSError, psycopg.Error)) else (
                f"{exc.__class__.__name__}: {exc}")
            log.error("export job failed", exc_info=not isinstance(exc, JobError),
                      extra={"job_id": job.id, "stage": "export_job", "error_class": exc.__class__.__name__,
                             "cause": str(exc)})
        finally:
            job.finished_at = time.time()
            metrics.export_job_duration.labels(state=job.state).observe(time.monotonic() - t0)
            self._finish(job)

    def _rows(self, spec: JobSpec):  # noqa: ANN202 - generator of (id, key, payload)
        where, params = _where(spec)
        table = sql.Identifier(self.config.source_table)
        query = (sql.SQL(JOB_MARK + "SELECT id, key, payload FROM {} WHERE ").format(table) + where
                 + sql.SQL(" ORDER BY id"))
        with self._connection() as conn, conn.transaction():
            with conn.cursor(name="export_job") as cur:  # server-side: constant memory
                cur.itersize = 2000
                cur.execute(query, params)
                for row_id, key, payload in cur:
                    yield int(row_id), key or "", bytes(payload or b"")

    def _render(self, job: Job, row_id: int, key: str, payload: bytes) -> bytes:
        text = decode_payload(row_id, payload)
        if job.spec.format == "jsonl":
            line = json.dumps({"id": row_id, "key": key, "payload": text}, ensure_ascii=False) + "\n"
        else:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerow([row_id, key, text])
            line = out.getvalue()
        return encode_text(row_id, line, job.spec.encoding)

    def _dead_letter(self, job: Job, buffer: Buffer, row_id: int, payload: bytes, exc: PermanentRecordError) -> None:
        letter = DeadLetter(row_id, exc.reason, f"job {job.id}: {exc.detail}", payload, "export_job")
        buffer.dead_letter([letter])
        job.rows_dead_lettered += 1
        metrics.records_dead_lettered.labels(reason=exc.reason).inc()
        metrics.export_rows.labels(outcome="dead_lettered").inc()
        log.error("export row dead-lettered", extra={"job_id": job.id, "record_id": row_id, "reason": exc.reason,
                                                     "cause": exc.detail, "stage": "export_job"})

    def _to_file(self, job: Job, buffer: Buffer) -> None:
        final = self.file_path(job.spec)
        directory = os.path.dirname(final)
        partial = os.path.join(directory, f".{job.spec.destination}.{job.id}.partial")
        job.path = final
        try:
            os.makedirs(directory, exist_ok=True)
            open(partial, "xb").close()  # permission denied surfaces here, before any work
            if job.spec.format == "csv":
                append_durably(partial, encode_text(0, "id,key,payload\n", job.spec.encoding))
            pending: list[bytes] = []
            for row_id, key, payload in self._rows(job.spec):
                try:
                    pending.append(self._render(job, row_id, key, payload))
                except PermanentRecordError as exc:
                    self._dead_letter(job, buffer, row_id, payload, exc)
                    continue
                job.rows_written += 1
                if len(pending) >= 1000:
                    append_durably(partial, b"".join(pending))
                    pending.clear()
            if pending:
                append_durably(partial, b"".join(pending))
            _publish(partial, final, job.spec.overwrite)
            fsync_dir(directory)
            metrics.export_rows.labels(outcome="written").inc(job.rows_written)
        except OSError as exc:
            _remove_quietly(partial)
            job.rows_written = 0
            raise JobError(f"writing {final} failed: {exc.strerror or exc} (errno {exc.errno}); "
                           f"no file was left under the final name") from exc
        except BaseException:
            # Any other failure (the source cancelled a statement, a link broke): nothing left
            # behind either. Found by faultline explore: a statement timeout left the .partial.
            _remove_quietly(partial)
            job.rows_written = 0
            raise

    def _to_kafka(self, job: Job, buffer: Buffer) -> None:
        producer = Producer({"bootstrap.servers": self.config.kafka_bootstrap, "acks": "all",
                             "enable.idempotence": True,
                             "message.timeout.ms": self.config.kafka_message_timeout_ms})
        failures: list[str] = []

        def report(err, _msg) -> None:  # noqa: ANN001
            if err is not None:
                failures.append(err.str())
            else:
                job.rows_written += 1

        for row_id, key, payload in self._rows(job.spec):
            try:
                value = self._render(job, row_id, key, payload)
            except PermanentRecordError as exc:
                self._dead_letter(job, buffer, row_id, payload, exc)
                continue
            while True:
                try:
                    producer.produce(job.spec.destination, value, key=str(row_id).encode(), on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.05)  # local queue full: let delivery reports drain it
            producer.poll(0)
        left = producer.flush(self.config.kafka_message_timeout_ms / 1000 + 5)
        if left or failures:
            raise JobError(f"{len(failures)} rows failed delivery to {job.spec.destination} "
                           f"({left} still queued); first error: {failures[0] if failures else 'timeout'}")


def _publish(partial: str, final: str, overwrite: bool) -> None:
    """Give the finished file its name: replacing what is there only when asked; otherwise a hard
    link, which fails atomically if another job took the name since admission."""
    if overwrite:
        os.replace(partial, final)
        return
    try:
        os.link(partial, final)
    except FileExistsError as exc:
        _remove_quietly(partial)
        raise JobError(f"{final} appeared while the job ran; it was left as it was (ask with overwrite=true "
                       "to replace it)") from exc
    os.unlink(partial)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
