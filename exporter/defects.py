"""Seeded defects: realistic bugs switched on one at a time to prove the harness has teeth.

``FAULTLINE_EXPORTER_DEFECT=<name>`` turns one on. Each lives in the code path where such a
bug would really be written; this module only says whether it is on. Off by default, and
loud when on.
"""

from __future__ import annotations

import functools
import logging
import os

from exporter.errors import ConfigError

ENV = "FAULTLINE_EXPORTER_DEFECT"
KNOWN = {
    "ignore_send_errors": "Kafka delivery errors are dropped: failed sends count as delivered",
    "ack_before_send": "buffer entries are acknowledged before the sink confirmed them",
    "lossy_encoding": "encoding uses errors='replace': unencodable characters silently become '?'",
    "fatal_on_timeout": "a timeout on the background metadata poll exits the process",
    "pause_check_after_work": "pause checks its grace deadline only after a buffer query that can fail forever",
    "checkpoint_before_buffer": "the source checkpoint moves before the buffer acknowledged the append",
    "ignore_enospc": "file write errors are swallowed and the batch counts as written",
    "read_past_open_transactions": "the reader pages by id alone: rows a slower transaction commits later with "
                                   "lower ids are skipped",
    "too_large_batch_dead_lettered": "a batch the broker refuses as too large is dead-lettered whole, records "
                                     "that fit alone too",
    "new_before_redeliveries": "new buffer entries are delivered before the consumer's own pending ones (for "
                               "latency): a record retried after a failed send lands after later records of its key",
    "reader_ignores_pause": "the reader raises its idle flag when a pause is asked, then reads on: the pause is "
                            "acknowledged at once while rows keep flowing into the buffer",
    "reader_reads_while_paused": "while paused, the reader reads the next page from the source and drops it "
                                 "(a warm-up for the resume): nothing reaches the buffer, but the source is read",
    "refused_checkpoint_starts_at_newest": "a starting reader whose checkpoint read Redis refuses (BUSY, "
                                           "TRYAGAIN) starts from the source's newest row: rows written while "
                                           "it was down are skipped",
    "pause_grace_on_wall_clock": "a pause's grace deadline is kept on the wall clock: a step back while pausing "
                                 "puts it out of reach, and the pause is never answered",
    "fsync_retried_after_error": "a failed fsync is retried and the retry's success taken as durability "
                                 "(fsyncgate: the kernel dropped the dirty pages, the second fsync has nothing "
                                 "left to fail on)",
    "file_sink_syncs_lazily": "the file sink confirms a batch once it is written and fsyncs every eighth batch "
                              "(a group commit that acknowledges before the sync): a crash loses what was "
                              "confirmed since the last one",
    "partial_batch_success_acks_all": "a Kafka batch counts as delivered when any of its records was: records "
                                      "refused on one partition are acknowledged with those written on the others "
                                      "(Altinity/clickhouse-sink-connector 1299 committed a batch's offsets so)",
    "read_ahead_cursor_on_source_error": "the reader reads the next page ahead and moves its cursor when the "
                                         "read begins: a source error while rows are flowing (within 0.5 s of "
                                         "an append) skips that page (a race: a replay fails some of the time)",
    "checkpoint_saved_while_coalescing": "the reader saves its checkpoint when it takes a page and appends the "
                                         "page 0.3 s later (coalescing): a crash in between skips the page (a "
                                         "race: the kill must land in the wait while rows flow)",
    "checkpoint_rewind_ignored": "the reader trusts its own cursor over a buffer checkpoint that went back (\"the "
                                 "buffer is behind, we are not\"): after a failover to a lagging Redis replica the "
                                 "rows whose entries the replica never got are never read again",
    "new_primary_starts_at_newest": "a reader that finds the source answering from another server (a failover "
                                    "promoted a standby) starts from its newest row, as a fresh replication slot "
                                    "starts at a promoted primary's current position: rows it had not read yet, "
                                    "and those written while it reconnected, are skipped",
    "acks_leader_only": "the Kafka producer runs with acks=1 and no idempotence (tuned for throughput: \"the "
                        "leader has it\"): records a partition leader acknowledged and died with before its "
                        "followers fetched them are lost in the election",
    "broker_errors_dead_lettered": "the Kafka producer runs without retries (\"our own loop retries\") and "
                                   "any error the broker answers is taken for a refusal of the record: records "
                                   "refused while a partition has too few in-sync replicas or no leader "
                                   "(NOT_ENOUGH_REPLICAS, NOT_LEADER_OR_FOLLOWER) are dead-lettered as "
                                   "'rejected_by_broker'",
    "deletes_dropped": "change mode: a change without an after image is taken for nothing to export, so deletes "
                       "are never sent (the row lives on downstream)",
    "changes_coalesced_per_page": "change mode: a page keeps only each row's last change (\"only the latest state "
                                  "matters\"): intermediate versions of a row updated in a burst are never sent",
    "key_change_as_update": "change mode: a delete followed in its transaction by an insert of another id is sent "
                            "as one update of the new id; the old id's delete is lost (the old key lives on)",
    "dead_letter_after_retries": "a record whose send failed twice (a retry budget of one) is dead-lettered as "
                                 "'retries_exhausted' "
                                 "instead of staying in the buffer until the sink takes it",
}


@functools.cache  # read once: the environment of a running process does not change
def active() -> str | None:
    name = os.environ.get(ENV, "").strip() or None
    if name is not None and name not in KNOWN:
        raise ConfigError(f"{ENV}={name!r} is not a known defect; known: {', '.join(sorted(KNOWN))}")
    return name


def on(name: str) -> bool:
    assert name in KNOWN, name
    return active() == name


def announce(log: logging.Logger) -> None:
    name = active()
    if name:
        log.error("SEEDED DEFECT ACTIVE: %s (%s); this exporter is deliberately broken", name, KNOWN[name],
                  extra={"defect": name})
