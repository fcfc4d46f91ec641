"""The continuous export: reader (source -> buffer), deliverer (buffer -> sinks, exporter.delivery),
metadata poller.

At-least-once end to end: the checkpoint moves in the same Redis transaction as the append;
a buffer entry is acknowledged only after every sink confirmed it; failed entries stay pending
and are read again (``pending=True``) before anything new; entries a crashed consumer left
behind are claimed with XAUTOCLAIM.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from exporter import defects, metrics
from exporter.buffer import Buffer, DeadLetter, RedisRefused
from exporter.changes import change_value, changed
from exporter.config import Config
from exporter.control import Control, backoff, count_dead
from exporter.delivery import Deliverer
from exporter.encoding import decode_payload, record_bytes
from exporter.errors import PermanentRecordError, TransientError
from exporter.source import TIMEOUTS, GapWatch, Page, Row, Source

log = logging.getLogger("exporter.pipeline")


READ_AHEAD_S = 0.5  # the seeded read-ahead defect's window after an append (see Reader._lose_read_ahead)
COALESCE_S = 0.3  # the seeded coalescing defect's wait (see Reader._coalesce_after_checkpoint)
NEW_PRIMARY_RESTART_S = 1.0  # the seeded failover defect's restart backoff (see Reader._restart_on_new_primary)


class Reader:
    name = "reader"

    def __init__(self, config: Config, control: Control) -> None:
        self.config, self.control = config, control
        self.source = Source(config, stage="source.read")
        self.buffer = Buffer(config)
        self.checkpoint: int | None = None
        self._held_since: float | None = None  # when the first unsettled row after the checkpoint was seen
        self._appended_at: float | None = None  # when the last page with rows reached the buffer
        self._unreplicated: int | None = None  # appended up to here, not yet on enough buffer replicas
        self.gaps = GapWatch()  # rolled-back ids are passed once nobody can hold them
        self._server: str | None = None  # the source server last read from (the seeded failover defect's)

    def run(self) -> None:
        attempt = 0
        while not self.control.stop.is_set():
            if self._paused():
                self._warm_next_page()
                self.control.wait(self.config.poll_interval_s)
                continue
            try:
                moved = self.step()
                attempt = 0
                if not moved:
                    self.control.reader_idle.set()
                    self.control.wait(self.config.poll_interval_s)
            except TransientError as exc:
                attempt += 1
                metrics.retries.labels(stage=exc.stage).inc()
                log.error("read pass failed; retrying", extra={"stage": exc.stage, "attempt": attempt,
                                                               "error_class": exc.cause.__class__.__name__,
                                                               "cause": str(exc.cause),
                                                               "checkpoint": self.checkpoint})
                self._lose_read_ahead(exc)
                self.control.wait(backoff(attempt, self.config.retry_max_backoff_s))
        self.control.reader_idle.set()

    def _lose_read_ahead(self, exc: TransientError) -> None:
        """Nothing, unless the seeded defect is on. Then the reader is one that reads the next
        page ahead as soon as it appended one, and moved its cursor past that page when the read
        began: a source error that lands while such a read is in flight (within READ_AHEAD_S of
        an append that carried rows) leaves the cursor past a page that never reached the buffer.
        A race: the error must come while rows are flowing."""
        if not defects.on("read_ahead_cursor_on_source_error") or exc.stage != "source.read":
            return
        if self._appended_at is None or time.monotonic() - self._appended_at > READ_AHEAD_S or self.checkpoint is None:
            return
        ahead = self.checkpoint + self.config.batch_size
        log.warning("read-ahead interrupted; resuming after it", extra={"checkpoint": self.checkpoint, "ahead": ahead})
        self.buffer.set_checkpoint(ahead)
        self.checkpoint = ahead

    def _paused(self) -> bool:
        """Whether to stay idle. The idle flag is lowered *before* the pause flag is read: the
        pauser raises the pause flag before it reads the idle flag, so it can never take an idle
        flag left from the last pass for "idle now" while this pass goes on to read (that order
        let a pause be acknowledged as drained and rows be appended after it)."""
        self.control.reader_idle.clear()
        if not self.control.pause_requested.is_set():
            return False
        self.control.reader_idle.set()
        # The bug: the idle flag is raised for the pauser, and the loop reads on regardless.
        return not defects.on("reader_ignores_pause")

    def _stored_checkpoint(self) -> int:
        """The checkpoint the buffer holds. With the seeded defect on, a starting reader whose read
        of it is refused (Redis busy) starts from the source's newest row instead and stores it, "so
        as not to export everything again": what was written while it was down is skipped."""
        try:
            return self.buffer.checkpoint()
        except TransientError as exc:
            if self.checkpoint is None and defects.on("refused_checkpoint_starts_at_newest") \
                    and isinstance(exc.cause, RedisRefused):
                log.warning("checkpoint read refused; starting from the newest row", extra={"cause": str(exc.cause)})
                newest = self.source.max_id()
                self.buffer.set_checkpoint(newest)  # and remembered, so the next start agrees
                return newest
            raise

    def _restart_on_new_primary(self) -> None:
        """Nothing, unless the seeded defect is on. Then the reader notes which server answers, and
        when another one does (a standby promoted) it starts from that server's newest row, as a
        fresh replication slot would: what it had not read yet is skipped."""
        if not defects.on("new_primary_starts_at_newest") or self.checkpoint is None:
            return
        server = self.source.server()
        if self._server is not None and server != self._server:
            # As a connector task restarts after its backoff and makes a fresh slot: what was
            # written meanwhile is behind the slot's start.
            self.control.wait(NEW_PRIMARY_RESTART_S)
            newest = self.source.max_id()
            log.warning("source moved to a new primary; starting from its newest row",
                        extra={"server": server, "was": self._server, "checkpoint": self.checkpoint, "newest": newest})
            self.buffer.set_checkpoint(newest)
            self.checkpoint = newest
        self._server = server

    def _warm_next_page(self) -> None:
        """Nothing, unless the seeded defect is on: then, while paused, the next page is read from
        the source and dropped (a "warm-up" so the resume starts fast), so the pause stops the
        buffer and the sink but not the reads on the source it was asked to leave alone."""
        if not defects.on("reader_reads_while_paused") or self.checkpoint is None:
            return
        try:
            self.source.fetch_after(self.checkpoint, self.config.batch_size)
        except TransientError as exc:
            log.warning("warm-up read failed", extra={"stage": exc.stage, "cause": str(exc.cause)})

    def step(self) -> bool:
        """One chunk from the source into the buffer; False when there was nothing to do."""
        self._await_replicas()
        stored = self._stored_checkpoint()
        if self.checkpoint is None:
            self.checkpoint = stored
            log.info("reader starting", extra={"checkpoint": self.checkpoint})
        elif stored != self.checkpoint and not (defects.on("checkpoint_rewind_ignored") and stored < self.checkpoint):
            # The buffer lost its state (Redis restarted without persistence): what it held is gone,
            # so read again from what it still remembers. Duplicates, never loss.
            log.warning("buffer checkpoint went back; re-reading from it", extra={
                "stage": "source.read", "checkpoint": self.checkpoint, "buffer_checkpoint": stored})
            metrics.retries.labels(stage="source.rewind").inc()
            self.checkpoint = stored
        self._restart_on_new_primary()
        if self.buffer.length() * self.config.pack_size >= self.config.max_buffer:
            # Backpressure: the sink is behind; nothing is evicted. Entries times pack size is an
            # upper bound on the records buffered, so the bound holds however full the packs are.
            return False
        rows = self._settled_rows(self.source.fetch_after(self.checkpoint, self.config.batch_size), self.checkpoint)
        if not rows:
            return False
        metrics.records_read.inc(len(rows))
        records, dead = self._values(changed(rows) if self.config.changes else rows)
        last = rows[-1].id
        if defects.on("checkpoint_before_buffer"):
            # The bug: the checkpoint is moved first; if the append then fails, these rows are skipped.
            self.buffer.set_checkpoint(last)
            self.checkpoint = last
        if defects.on("checkpoint_saved_while_coalescing"):
            self._append_coalesced(records, dead, last)
        else:
            # Only over the checkpoint it read: one that went back meanwhile (a failover) is read again.
            self.buffer.append(records, dead, last, expected=self.checkpoint)
        self._appended_at = time.monotonic()
        metrics.records_buffered.inc(len(records))
        for letter in dead:
            count_dead(letter)
        if self.config.redis_wait_replicas:
            self._unreplicated = last
            self._await_replicas()
        else:
            self.checkpoint = last
        return True

    def _await_replicas(self) -> None:
        """With ``redis_wait_replicas``: the reader's cursor moves past an append only once that
        many replicas hold it, so the checkpoint a failover leaves is one the reader stood on.
        Fewer in time: TransientError (retried; nothing further is read meanwhile). The checkpoint
        gone elsewhere (the failover came first): the next pass reads on from what is there."""
        pending = self._unreplicated
        if pending is None:
            return
        wanted, timeout_ms = self.config.redis_wait_replicas, self.config.redis_wait_timeout_ms
        held = self.buffer.replicated(pending, wanted, timeout_ms)
        if held is False:
            raise TransientError("buffer.replicate", f"fewer than {wanted} replica(s) acknowledged the append up "
                                                     f"to row {pending} within {timeout_ms} ms; reading no further")
        self._unreplicated = None
        if held:
            self.checkpoint = pending


    def _values(self, rows: list[Row]) -> tuple[list[tuple[int, bytes]], list[DeadLetter]]:
        """Rows as the sink's messages (a change as a change event), or as dead letters."""
        records: list[tuple[int, bytes]] = []
        dead: list[DeadLetter] = []
        changes = self.config.changes
        for row in rows:
            try:
                value = (change_value(row) if changes else
                         record_bytes(row.id, row.key, decode_payload(row.id, row.payload or b"")))
                if len(value) > self.config.max_record_bytes:
                    raise PermanentRecordError(row.id, "too_large", f"{len(value)} bytes, the sink accepts "
                                                                    f"{self.config.max_record_bytes}")
                records.append((row.id, value))
            except PermanentRecordError as exc:
                # A change is dead-lettered under the id of the row it changed: what an operator looks up.
                dead.append(DeadLetter(row.row_id if changes else row.id, exc.reason, exc.detail, row.payload or b"",
                                       "source.read"))
        return records, dead

    def _append_coalesced(self, records: list[tuple[int, bytes]], dead: list[DeadLetter], last: int) -> None:
        """The seeded defect: appends are coalesced (a page waits COALESCE_S for more before it is
        appended) and the checkpoint is saved when the page is taken, "so a slow append does not
        hold the source back". An append that fails puts the checkpoint back; a crash while the
        page waits cannot, and the page is skipped on restart. A race: the crash must land in
        the wait while rows flow."""
        previous = self.checkpoint
        self.buffer.set_checkpoint(last)
        self.control.wait(COALESCE_S)
        try:
            self.buffer.append(records, dead, last, expected=last)
        except TransientError:
            if previous is not None:
                self.buffer.set_checkpoint(previous)  # may fail too (Redis gone): then the page is skipped
            raise

    def _settled_rows(self, page: Page, checkpoint: int) -> list[Row]:
        """The rows the checkpoint may move through: settled ones, or (after a bounded wait for a
        transaction that stays open) all of them, loudly. The wait is counted in metrics."""
        if defects.on("read_past_open_transactions"):
            return page.rows  # the bug: page by id alone, as if commits came in id order
        rows = self.gaps.settle(page, checkpoint)
        now = time.monotonic()
        if rows or not page.rows:
            self._end_hold(now)
            return rows
        # Every row after the checkpoint waits on an older transaction still running: wait for it.
        if self._held_since is None:
            self._held_since = now
            log.info("waiting for older open transactions before reading past them", extra={
                "stage": "source.read", "checkpoint": self.checkpoint, "first_held_id": page.rows[0].id})
        if now - self._held_since < self.config.source_settle_timeout_s:
            return []
        metrics.source_settle_timeouts.inc()
        log.error("an open transaction held the source past the settle timeout; reading past it (rows it "
                  "commits later with lower ids will be missed)", extra={
                      "stage": "source.read", "checkpoint": self.checkpoint, "first_held_id": page.rows[0].id,
                      "timeout_s": self.config.source_settle_timeout_s})
        self._end_hold(now)
        return page.rows

    def _end_hold(self, now: float) -> None:
        if self._held_since is not None:
            metrics.source_settle_wait.inc(now - self._held_since)
            self._held_since = None


class MetadataPoller(threading.Thread):
    """Background path: polls the source's high-water mark for the lag gauge.

    A timeout here is never fatal: the pass is skipped, logged and counted, and nothing is
    acted on from a failed read (the incident: one etcd timeout on a list call exited the
    process).
    """

    def __init__(self, config: Config, control: Control) -> None:
        super().__init__(name="metadata-poller", daemon=True)
        self.config, self.control = config, control
        self.source = Source(config, stage="background.metadata")
        self.source_max_id: int | None = None

    def run(self) -> None:
        while not self.control.stop.wait(self.config.metadata_poll_interval_s):
            try:
                self.source_max_id = self.source.max_id()
            except TransientError as exc:
                if defects.on("fatal_on_timeout") and isinstance(exc.cause, TIMEOUTS):
                    log.critical("metadata poll timed out; exiting", extra={"cause": str(exc.cause)})
                    os._exit(70)
                metrics.background_failures.labels(task="metadata_poll").inc()
                log.warning("metadata poll failed; skipping this pass", extra={
                    "stage": exc.stage, "error_class": exc.cause.__class__.__name__, "cause": str(exc.cause)})


WORKERS: dict[str, type[Reader] | type[Deliverer]] = {"reader": Reader, "deliverer": Deliverer}


def worker_main(kind: str, config: Config, control: Control) -> None:
    """Entry point of a reader or deliverer process (spawned by the service)."""
    import signal

    from exporter import jsonlog

    # A stop is the service's to make (control.stop, then a join): SIGTERM or Ctrl-C sent to the
    # whole process group killed a worker mid-pass, the supervisor started it again and the stop
    # hung on a shared lock the dead worker held until it was killed 60 s later. The main process
    # dying still takes the workers with it (below).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    jsonlog.configure(config.log_level)
    if config.profile_dir:
        _profiled(kind, config, control)
    else:
        WORKERS[kind](config, control).run()


def _profiled(kind: str, config: Config, control: Control) -> None:
    """The worker under cProfile, its statistics written when it stops (a stop is a return)."""
    import cProfile

    profile = cProfile.Profile()
    try:
        profile.runcall(WORKERS[kind](config, control).run)
    finally:
        os.makedirs(config.profile_dir, exist_ok=True)
        profile.dump_stats(os.path.join(config.profile_dir, f"{kind}-{os.getpid()}.prof"))


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: if the main process is killed, its workers go with it (no orphans)."""
    import ctypes
    import signal

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(1, signal.SIGKILL) != 0:  # 1 = PR_SET_PDEATHSIG
        log.warning("cannot tie the worker's life to the main process", extra={"errno": ctypes.get_errno()})
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
