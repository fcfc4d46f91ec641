"""The registry of checks: built-ins, and a team's own.

A team registers its own checks the way it registers step kinds, and they then work exactly like
the built-ins (the judge asks them, ``faultline list --checks`` lists them, reports show them):

- an entry point in the group ``faultline.checks`` naming a module (importing it registers the
  classes it decorates with ``@check_kind``);
- a module in the target definition's ``steps = [...]`` (imported when the target is loaded).

Every ``Expect`` field is read by exactly one registered check: a field that no check reads
would be a setting that changes nothing, so ``verify`` refuses to start with one.
"""

from __future__ import annotations

from harness.checks.base import Capability, CheckKind, Evidence
from harness.checks.registry import (
    CheckKindError,
    check_kind,
    custom_fields,
    judge_all,
    registered_checks,
    verify,
    verify_custom,
)

__all__ = ["Capability", "CheckKind", "CheckKindError", "Evidence", "check_kind", "custom_fields", "judge_all",
           "registered_checks", "verify", "verify_custom"]

# The built-in checks register themselves on import, in the order reports list them.
from harness.checks import lifecycle, records, changes, metrics, pauses, actions, reaches  # noqa: E402,F401,I001
