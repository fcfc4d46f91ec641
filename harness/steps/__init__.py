"""The registry of step kinds: built-ins, and a team's own.

A team registers its own kinds in either of two ways, and they then work exactly like the
built-ins (scenarios, incident files, reports, soak, shrink, ``faultline list --steps``):

- an entry point in the group ``faultline.steps`` naming a module (importing it registers the
  classes it decorates with ``@step_kind``);
- a module path in the target definition's ``steps = ["mypkg.steps"]`` (or imported by a
  scenario module).
"""

from __future__ import annotations

from harness.steps.base import STRICT, Background, Problem, StepKind, World
from harness.steps.registry import (
    StepKindError,
    by_name,
    kind_of,
    load_modules,
    load_plugins,
    registered,
    step_kind,
)

__all__ = ["STRICT", "Background", "Problem", "StepKind", "StepKindError", "World", "by_name", "kind_of",
           "load_plugins", "load_modules", "registered", "step_kind"]

# The built-in kinds register themselves on import.
from harness.steps import (  # noqa: E402,F401
    actions,
    clock,
    disk,
    doctor_look,
    exports,
    failover,
    files,
    kafka_failover,
    kafka_faults,
    kafka_protocol,
    load,
    network,
    pauses,
    postgres_faults,
    postgres_protocol,
    process,
    redis_faults,
    redis_protocol,
    source,
)
