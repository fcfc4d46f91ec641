"""The check registry (see the package's docstring): checks register with ``@check_kind``."""


from __future__ import annotations

import dataclasses
from typing import TypeVar

from harness.checks.base import CheckKind, Evidence
from harness.errors import HarnessError
from harness.model.expect import Expect
from harness.model.plugins import load_entry_points
from harness.report.journal import Check

__all__ = ["CheckKindError", "check_kind", "custom_fields", "judge_all", "registered_checks", "verify",
           "verify_custom"]

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


def verify_custom(expect: Expect, where: str) -> None:
    """Every ``Expect.custom`` key is read by a registered check (a team's own): one that none
    reads is a setting that changes nothing, refused like an unknown field."""
    claimed = custom_fields()
    for key in sorted(expect.custom):
        if key not in claimed:
            raise CheckKindError(f"{where}: expect.custom.{key} is read by no registered check; custom fields: "
                                 f"{', '.join(sorted(claimed)) or 'none'}")


def custom_fields() -> dict[str, str]:
    """Custom Expect fields the registered checks read: field -> check."""

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
