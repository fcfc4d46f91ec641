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

import dataclasses
from typing import TypeVar

from harness.checks.base import Capability, CheckKind, Evidence
from harness.errors import HarnessError
from harness.journal import Check
from harness.plugins import load_entry_points

__all__ = ["Capability", "CheckKind", "CheckKindError", "Evidence", "check_kind", "judge_all", "registered_checks",
           "verify"]

ENTRY_POINT_GROUP = "faultline.checks"
K = TypeVar("K")
_REGISTRY: dict[str, CheckKind] = {}


class CheckKindError(HarnessError):
    """A check cannot be registered (a clash of names or fields) or an Expect field is unread."""


def check_kind(cls: K) -> K:
    """Register a check class under its ``name`` (the name reports and JUnit use)."""
    if not (isinstance(cls, type) and issubclass(cls, CheckKind)) or not cls.name:
        raise CheckKindError(f"{cls!r}: a check subclasses CheckKind and names its name")
    if not cls.name.replace("_", "").isalnum():
        raise CheckKindError(f"{cls.__name__}: a check's name is letters, digits and underscores, not {cls.name!r}")
    other = _REGISTRY.get(cls.name)
    if other is not None and type(other).__qualname__ != cls.__qualname__:
        raise CheckKindError(f"check {cls.name!r} of {cls.__module__}.{cls.__name__} clashes with "
                             f"{type(other).__module__}.{type(other).__name__}")
    _REGISTRY[cls.name] = cls()
    return cls


def registered_checks() -> dict[str, CheckKind]:
    load_entry_points(ENTRY_POINT_GROUP, CheckKindError)
    return dict(_REGISTRY)


def verify(checks: dict[str, CheckKind] | None = None) -> None:
    """Every built-in Expect field is read by exactly one check, and no two checks claim one
    custom field: a field no check reads is a check that cannot fail."""
    from harness.scenario import Expect

    checks = registered_checks() if checks is None else checks
    readers: dict[str, list[str]] = {}
    for name, check in sorted(checks.items()):
        if check.expect_field is not None:
            readers.setdefault(check.expect_field, []).append(name)
    builtin = [f.name for f in dataclasses.fields(Expect) if f.name != "custom"]
    unread = [f for f in builtin if f not in readers]
    if unread:
        raise CheckKindError(f"Expect.{unread[0]} is read by no registered check: a setting that changes "
                             "nothing (register a check with expect_field = " + repr(unread[0]) + ")")
    shared = {f: names for f, names in readers.items() if len(names) > 1}
    if shared:
        field_name, names = next(iter(sorted(shared.items())))
        raise CheckKindError(f"Expect.{field_name} is read by {len(names)} checks ({', '.join(names)}): one field, "
                             "one check")


def custom_fields() -> dict[str, str]:
    """Custom Expect fields the registered checks read: field -> check."""
    from harness.scenario import Expect

    builtin = {f.name for f in dataclasses.fields(Expect)}
    return {c.expect_field: name for name, c in registered_checks().items()
            if c.expect_field is not None and c.expect_field not in builtin}


def judge_all(evidence: Evidence) -> list[Check]:
    """Every registered check the scenario turns on, in registration order; a check whose
    capability the target lacks is "not applicable", with the reason."""
    checks: list[Check] = []
    for check in registered_checks().values():
        if not check.enabled(evidence.expect):
            continue
        missing = sorted(check.needs - evidence.capabilities)
        if missing:
            checks.append(Check(check.name, True, f"not applicable: target {evidence.target_name} has no "
                                f"{', '.join(missing)}", applicable=False))
            continue
        checks += check.judge(evidence)
    return checks


# The built-in checks register themselves on import, in the order reports list them.
from harness.checks import lifecycle, records, metrics, pauses, actions  # noqa: E402,F401,I001
