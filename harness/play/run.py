"""One scenario's run: what steps, actions and the judge share (stack, exporter process,
ledger, clock, journal, workdir). Steps receive it as ``run``; it owns no policy of its own."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from harness.catalogue.scenario import Scenario
from harness.errors import HarnessError
from harness.infra.faultyfs.mount import FaultyMount
from harness.infra.proxies.base import ProtocolProxy
from harness.infra.stack import Stack
from harness.judge.changelog import Delivers, outstanding, split_changes
from harness.judge.histories import BeforeImages
from harness.judge.ledger import Ledger, content_hash
from harness.judge.reconcile import BufferEvidence
from harness.judge.sink_readers import MESSAGE_SINKS, SinkReader, primary_sink
from harness.judge.sinks import DeadLetterRecord, SinkRecord, read_dead_letters
from harness.model.profiles import payloads
from harness.model.target import TargetDefinition
from harness.report.journal import Observations, ProcessEvidence
from harness.report.result import ScenarioResult
from harness.rig.changes import ChangeWriter
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.rig.load import LoadRun
from harness.rig.tap import BufferTap
from harness.rig.timeline import WriteClock
from harness.rig.workload import SourceWriter


def fresh_directory(path: Path) -> Path:
    """The scenario's working directory, emptied: files an earlier run left under the same
    ``--out`` (an export's final file, a sink's lines) must not pass for this run's."""
    if path.exists():
        shutil.rmtree(path)
    return path


class Run:
    def __init__(self, stack: Stack, target: TargetDefinition, scenario: Scenario, workdir: Path,
                 interrupt: threading.Event | None = None) -> None:
        self.stack = stack
        self.target = target
        self.scenario = scenario
        self.interrupt = interrupt or threading.Event()
        self.ctx = RunContext(stack, f"s_{scenario.name}_{uuid.uuid4().hex[:6]}",
                              fresh_directory(workdir / scenario.name))
        self.writer = SourceWriter(stack, self.ctx.source_table, write=scenario.workload.write)
        mix = scenario.workload.changes
        self.changes = None if mix is None else ChangeWriter(
            lambda: stack.postgres_dsn(proxied=False), self.ctx.source_table, mix, seed=scenario.workload.seed,
            size=scenario.workload.size, key_prefix=scenario.name)
        self.ledger = Ledger()
        self.result = ScenarioResult(scenario.name, scenario.description, scenario.incident)
        self.observed = Observations()  # what steps measured, for the registered checks to judge
        self.result.names = {"namespace": self.ctx.namespace, "source_table": self.ctx.source_table,
                             "workdir": str(self.ctx.workdir),
                             **{role: self.ctx.fill(value) for role, value in target.sinks.items()
                                if role in (*MESSAGE_SINKS, "dead_letter_stream", "buffer_stream", "file_sink")}}
        self.env: dict[str, str] = {}  # the exporter's environment: knobs as the target names them, then extras
        self.exporter: ExporterProcess | None = None
        self.t0 = time.monotonic()
        self.wall_start = time.time()
        self.clock = WriteClock()  # when each record was written (for end-to-end latency)
        self.tap: BufferTap | None = None
        self.planned_kills = 0  # exporter kills the scenario made on purpose
        self.revived = False  # the exporter died by itself and was started again to drain
        self.process: ProcessEvidence | None = None  # the exporter as healing found it
        self.mounted: list[Path] = []  # small disks a step mounted
        self.immutable: list[Path] = []  # paths a step made immutable
        self.faulty_mounts: dict[str, FaultyMount] = {}  # directories on the faulty file system, by name
        self.next_event_due: float | None = None  # see StepContext.next_event_due
        self.closers: list[Callable[[], None]] = []  # last-resort undo a step registers (run at cleanup)
        self.loads: list[LoadRun] = []  # Locust runs under way
        self.proxies: dict[str, ProtocolProxy] = {}  # protocol proxies on the links, by server
        self.ok_writes = 0  # acknowledged writes so far (the harness's own and held transactions')
        self.resolved = 0  # writes of unknown outcome read back from the source
        self.resolve_error: str | None = None
        self._written = 0
        self._unknown: list[Any] = []  # writes whose commit outcome was unknown when made
        self._restarting: Future[None] | None = None  # an exporter restart under way (restart_exporter_beside)

    # -- the exporter ------------------------------------------------------------------------------
    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def live_exporter(self) -> ExporterProcess:
        """The exporter; if it is being restarted, once the restart is done (or failed)."""
        if self.exporter is None:
            raise HarnessError(f"scenario {self.scenario.name}: exporter not started")
        pending = self._restarting  # every caller waits for it, not only the first (threads ask too)
        if pending is not None:
            try:
                pending.result(timeout=self.exporter.start_timeout + 30)
            except TimeoutError as exc:
                raise HarnessError(f"scenario {self.scenario.name}: exporter restart still running after "
                                   f"{self.exporter.start_timeout + 30:.0f}s") from exc
        return self.exporter

    def settle_restart(self) -> str | None:
        """Before closing: a restart under way has finished (else its process would outlive the
        run); what went wrong with it, if anything."""
        pending, self._restarting = self._restarting, None
        if pending is None:
            return None
        try:
            pending.result(timeout=(self.exporter.start_timeout if self.exporter else 60) + 30)
        except Exception as exc:  # noqa: BLE001 - reported by the cleanup, which must go on
            return f"exporter restart: {exc.__class__.__name__}: {exc}"
        return None

    def restart_exporter_beside(self) -> None:
        """Start the killed exporter again without holding the timeline: an exporter that cannot be
        ready while another fault is on (a Kafka Connect worker asks Kafka for its cluster id
        before it serves anything) would otherwise keep that fault from ever being removed. The
        next step that needs the exporter waits for the restart (``live_exporter``)."""
        exporter = self.live_exporter()
        done: Future[None] = Future()

        def restart() -> None:
            try:
                exporter.start()
                done.set_result(None)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the restart
                done.set_exception(exc)

        threading.Thread(target=restart, name="exporter-restart", daemon=True).start()
        self._restarting = done

    def prepare_source(self) -> None:
        """The target's own preparation of the source, as the administrator (a publication for a
        CDC connector, the replication right for its role), after the table exists."""
        if self.target.postgres_logical_replication:
            with psycopg.connect(self.stack.postgres_dsn(proxied=False), connect_timeout=10) as conn:
                level = str((conn.execute("SHOW wal_level").fetchone() or ("?",))[0])
            if level != "logical":
                raise HarnessError(f"target {self.target.name} reads Postgres's WAL, but this stack's Postgres runs "
                                   f"with wal_level={level}; start it with logical replication (the local and "
                                   "docker backends do when the target asks; an external server must be set so)")
        identity = self.scenario.knobs.get("replica_identity")
        if identity is not None:  # before a publication or slot captures the table's first change
            self._admin_sql((f'ALTER TABLE "{{source_table}}" REPLICA IDENTITY {identity.upper()}',),
                            "knob replica_identity")
        self._admin_sql(self.target.prepare_sql, "prepare_sql")
        if self.changes is not None and self.target.changes is not None:
            self._admin_sql(self.target.changes.prepare_sql, "[changes] prepare_sql")

    def cleanup_source(self) -> None:
        """The target's cleanup (its replication slot: a slot left behind holds WAL forever)."""
        self._admin_sql(self.target.cleanup_sql, "cleanup_sql")

    def _admin_sql(self, statements: tuple[str, ...], what: str) -> None:
        if not statements:
            return
        try:
            with psycopg.connect(self.stack.postgres_dsn(proxied=False), autocommit=True, connect_timeout=10) as conn:
                for statement in statements:
                    conn.execute(self.ctx.fill(statement).encode())
        except psycopg.Error as exc:
            raise HarnessError(f"scenario {self.scenario.name}: target {self.target.name}'s {what} failed: "
                               f"{exc.__class__.__name__}: {exc}") from exc

    def start_exporter(self) -> ExporterProcess:
        self.exporter = ExporterProcess(self.target, self.ctx, extra_env=self.env)
        self.exporter.start()
        return self.exporter

    def sink(self, name: str) -> str:
        """A sink's name as the target definition gives it for this run (topic, stream, file)."""
        return self.ctx.fill(self.target.sinks[name])

    # -- the workload ------------------------------------------------------------------------------
    def next_rows(self, n: int) -> list[tuple[str, bytes]]:
        """The workload's next ``n`` rows: keys cycle through ``workload.keys`` (0: one per record),
        so that records of one key are written at different times, under different faults."""
        w = self.scenario.workload
        bodies = payloads(w.profile, n, w.size, w.seed, start=self._written)
        rows = [(self.key_of(self._written + i), body) for i, body in enumerate(bodies)]
        self._written += n
        return rows

    def key_of(self, n: int) -> str:
        keys = self.scenario.workload.keys
        return f"{self.scenario.name}-k{n % keys}" if keys else f"{self.scenario.name}-{n}"

    @property
    def written(self) -> int:
        return self._written

    def write(self, count: int) -> None:
        done = 0
        while done < count:
            n = min(self.scenario.workload.chunk, count - done)
            at = self.now()
            self.record_writes(self.writer.insert(self.next_rows(n)), at)
            done += n

    def write_changes(self, count: int) -> None:
        """The change workload's next ``count`` changes (none without one)."""
        if self.changes is not None and count > 0:
            self.changes.write(count)

    @property
    def delivers(self) -> Delivers:
        """What the target owes of a change workload: every version, or each row's latest state."""
        return self.target.changes.delivers if self.target.changes is not None else "every_version"

    @property
    def before_images(self) -> BeforeImages:
        """What the target's before images must hold: judged where its [record] says where they
        sit, by the replica identity the scenario set on the source table (DEFAULT when not)."""
        if not self.target.record.before_payload:
            return None
        return "full" if self.scenario.knobs.get("replica_identity") == "full" else "none"

    def plain_records(self, sink: list[SinkRecord]) -> list[SinkRecord]:
        """``sink`` without the change workload's rows and change events: what the record
        reconciler judges (a checkpoint, an export's file); the rest is the judge of histories'."""
        if self.changes is None:
            return sink
        return split_changes(sink, self.target.record, self.changes.log)[0]

    def plain_letters(self, letters: list[DeadLetterRecord]) -> list[DeadLetterRecord]:
        """``letters`` without those of the change workload's rows (the judge of histories takes
        them at the end, as versions that arrived on the dead-letter stream)."""
        if self.changes is None:
            return letters
        rows = set(self.changes.log.rows)
        return [x for x in letters if not (x.record_id.isdigit() and int(x.record_id) in rows)]

    def changes_owed(self, sink: list[SinkRecord]) -> int:
        """Committed changes the sink has not shown yet (0 without a change workload)."""
        if self.changes is None:
            return 0
        _plain, events = split_changes(sink, self.target.record, self.changes.log)
        return outstanding(self.changes.log, events, self.delivers)

    def change_count(self, share: float) -> int:
        mix = self.scenario.workload.changes
        return 0 if mix is None else int(mix.count * share)

    def record_writes(self, inserted: list[Any], at: float, began: int | None = None) -> None:
        """Writes just acknowledged. ``began``: the ledger tick taken when they began, for writes
        that stayed open while others committed (a held transaction); None: they began just now."""
        for written in inserted:
            if written.outcome == "indeterminate":
                # Resolved against the source before judging; if it committed, it may have done so
                # any time from now on (its tick now is its start).
                self._unknown.append((written, self.ledger.tick() if began is None else began))
                continue
            self.ledger.add(written.record_id, content_hash(written.payload), written.outcome, written.key, began)
            self.ok_writes += written.outcome == "ok"
        ids = [x.record_id for x in inserted if x.record_id is not None]
        if ids:
            self.clock.add(min(ids), at)

    def resolve_unknown_writes(self) -> None:
        """A write whose connection broke may or may not have committed: ask the source (healed by
        now). In it: it must be delivered. Not in it: it never happened. Unreachable: it stays
        indeterminate (neither its absence nor its presence in a sink is a violation)."""
        if self.changes is not None:
            self.changes.resolve()
        if not self._unknown:
            return
        try:
            found: dict[str, int] | None = self.writer.resolve([w.token for w, _began in self._unknown])
        except psycopg.Error as exc:
            found = None
            self.resolve_error = f"{exc.__class__.__name__}: {exc}"  # reported with the ledger
        for written, began in self._unknown:
            digest = content_hash(written.payload)
            if found is None:
                self.ledger.add(None, digest, "indeterminate")
            elif written.token in found:
                self.ledger.add(found[written.token], digest, "ok", written.key, began)
            else:
                self.ledger.add(None, digest, "failed")
        self.resolved += len(self._unknown)
        self._unknown = []

    # -- the sinks ---------------------------------------------------------------------------------
    def settled(self, exporter: ExporterProcess) -> tuple[list[SinkRecord], list[DeadLetterRecord], set[int]]:
        """Everything in the sinks and the dead-letter stream now, and the record ids it covers."""
        sink = self.sink_records(exporter)
        letters = self.dead_letters(exporter)
        ids = {r.record_id for r in sink if r.record_id is not None}
        ids |= {int(x.record_id) for x in letters if x.record_id.isdigit()}
        return sink, letters, ids

    def sink_reader(self, exporter: ExporterProcess) -> SinkReader:
        """The sink this scenario's records are judged in (a topic, a Redis stream, a file)."""
        return primary_sink(self.stack, exporter, self.target.sinks, self.target.record, self.scenario.sink)

    def sink_records(self, exporter: ExporterProcess) -> list[SinkRecord]:
        return list(self.sink_reader(exporter).records())

    def dead_letters(self, exporter: ExporterProcess) -> list[DeadLetterRecord]:
        """The dead-letter stream now ([] for a target without one: a source connector has none)."""
        if not self.target.has_sink("dead_letter_stream"):
            return []
        return read_dead_letters(self.stack, exporter.sink("dead_letter_stream"))

    def with_running_loads(self, ledger: Ledger) -> Ledger:
        """``ledger`` plus what the Locust loads still running wrote so far (their journals are
        merged when they end): read from the source by their key prefix, as writes that may or may
        not be in a sink read now (found by explore: an export during a load held rows the ledger
        did not know yet, and called them unexpected)."""
        if not self.loads:
            return ledger
        known = ledger.ids("ok") | ledger.ids("indeterminate")
        table = sql.Identifier(self.ctx.source_table)
        query = sql.SQL("SELECT id, payload FROM {} WHERE starts_with(key, %s)").format(table)
        try:
            with psycopg.connect(self.stack.postgres_dsn(proxied=False), connect_timeout=10) as conn:
                rows = [row for load in self.loads for row in conn.execute(query, (load.key_prefix,)).fetchall()]
        except psycopg.Error as exc:
            raise HarnessError(f"scenario {self.scenario.name}: cannot read the running load's rows from "
                               f"{self.ctx.source_table}: {exc.__class__.__name__}: {exc}") from exc
        for record_id, payload in rows:
            if record_id not in known:
                ledger.add(int(record_id), content_hash(bytes(payload)), "indeterminate")
        return ledger

    def buffer_evidence(self) -> BufferEvidence:
        """What the tap saw of the buffer; for a target without a buffer, evidence that says so."""
        return self.tap.evidence() if self.tap is not None else BufferEvidence(buffered=False)

    def buffer_idle(self) -> bool:
        if self.tap is None:
            # No buffer to look into: a quiet sink is no evidence that nothing is on its way (a
            # connector backing off for 10 s after an error is quiet too); the drain waits it out.
            return False
        evidence = self.tap.evidence()
        return not evidence.present and not evidence.pending

    def never_buffered(self, acknowledged: set[int]) -> set[int]:
        """Acknowledged writes the buffer tap never saw enter the buffer (all of them without a tap)."""
        return set(acknowledged) - (self.tap.evidence().seen if self.tap is not None else frozenset())

    def counters(self) -> tuple[float, float]:
        """Delivered and error counters now (the sampler charts them)."""
        exporter = self.live_exporter()
        samples = exporter.metrics(timeout=1.0)
        return exporter.metric_total("delivered", samples), exporter.error_total(samples)
