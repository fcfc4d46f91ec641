"""What a scenario holds the exporter to (``Expect``): each field turns on, or bounds, exactly one
registered check (harness.checks). Its own module, below both the scenario model and the checks,
so that neither imports the other."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from harness.model.strict import STRICT

LONGEST_S = 7 * 86_400.0  # the longest soak README promises: a week
Window = Annotated[float, Field(gt=0, le=LONGEST_S)]  # a length of time that must pass
Count = Annotated[int, Field(ge=0, le=10_000_000)]


@dataclass(frozen=True, config=STRICT)
class Expect:
    """What the scenario holds the exporter to. Each field turns on (or bounds) exactly one
    registered check (harness.checks; ``faultline list --checks`` shows which): a field that no
    check reads is refused at startup."""

    no_loss: bool = True
    no_corruption: bool = True
    dead_letters_have_reasons: bool = True
    errors_surfaced: bool = False
    process_alive: bool = True
    # Every pause in the scenario: acknowledged within its grace (plus a margin), and honoured
    # while in force (nothing moved beyond what was in flight; no resuming by itself).
    pause_within_grace: bool = True
    pause_honoured: bool = True
    # Every fault answered through a protocol proxy met a request it matched (one that never did
    # proved nothing; explore and soak draw such faults blind and turn this off).
    protocol_faults_met: bool = True
    metrics_agree: bool = True
    recovered_within_s: Window = 60.0
    dead_lettered_at_least: Count = 0
    no_resource_leak: bool = False  # sample the exporter's RSS, files, threads, connections; judge trends
    key_order: bool = True  # records of one key reach each partition or file in source order
    # At-least-once allows redeliveries, but a bounded number: more than this fails ``duplicates``
    # (None: not judged, still counted per fault window).
    max_duplicates: Annotated[int, Field(ge=0, le=100_000_000)] | None = None
    # A change workload, judged per row (harness.judge.histories; on only when changes are written):
    changes_delivered: bool = True  # every committed version and delete reached the sink, intact
    change_order: bool = True  # versions of a row reach each stream in commit order
    deletes_hold: bool = True  # a deleted row ends deleted downstream, never brought back
    key_changes_whole: bool = True  # a primary-key change arrives whole or not at all
    transactions_whole: bool = True  # a transaction's changes arrive all or none
    converges: bool = True  # the sink folded per row equals the source's final state
    before_images: bool = True  # before images hold what the replica identity gives (where a target has them)
    # A team's own checks' settings (``expect_field`` names a key here); an unknown key is refused.
    custom: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,100}$")],
                 bool | Annotated[float, Field(ge=0, le=1e12)]] = field(default_factory=dict)


# The fields of the change checks: they judge only a change workload's changes.
CHANGE_FIELDS = frozenset({"changes_delivered", "change_order", "deletes_hold", "key_changes_whole",
                           "transactions_whole", "converges", "before_images"})
