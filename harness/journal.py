"""What a run records as it goes: each check with its verdict, each step with its times and
evidence (chaostoolkit's journal, typed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    # False: the invariant cannot be judged on this target (no metrics to compare): never a
    # violation, and shown as "n/a" with the reason rather than as held.
    applicable: bool = True


@dataclass
class StepRecord:
    phase: str
    description: str
    applied_at: float | None = None
    removed_at: float | None = None
    evidence: str = ""
    result: dict[str, Any] | None = None
    window_s: float | None = None  # how long it was planned to last (faults and loads)
    fault: bool = False  # a fault (not an action or a load): duplicates are attributed to these
    # Faults only: records written (acknowledged) but not yet in the sink or dead-lettered when the
    # fault was applied, and records acknowledged while its window was open. A fault that meets no
    # data cannot show a loss (None: could not be read).
    in_flight_at_apply: int | None = None
    written_during: int | None = None

    @property
    def met_data(self) -> int | None:
        """Records exposed to this fault: in flight when it came, or written while it lasted."""
        if self.in_flight_at_apply is None and self.written_during is None:
            return None
        return (self.in_flight_at_apply or 0) + (self.written_during or 0)
