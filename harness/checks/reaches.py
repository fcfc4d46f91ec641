"""Whether a fault answered through a protocol proxy met what it was aimed at: a rule that matched
no request (the exporter never sent that command or statement while it was in force) proved
nothing, and a green verdict must not stand on it. A server the target does not use is "n/a"."""

from __future__ import annotations

from harness.checks.base import CheckKind, Evidence
from harness.checks.registry import check_kind
from harness.report.journal import Check


@check_kind
class ProtocolFaultsMet(CheckKind):
    name = "protocol_faults_met"
    expect_field = "protocol_faults_met"
    summary = "every fault answered through a protocol proxy met a request it matched (else it tested nothing)"

    def judge(self, evidence: Evidence) -> list[Check]:
        checks = []
        for reach in evidence.observed.reaches:
            if not reach.server_used:
                checks.append(Check(self.name, True, f"{reach.step}: the target does not use {reach.server}",
                                    applicable=False))
            elif reach.answered == 0:
                checks.append(Check(self.name, False, f"{reach.step}: answered no request ({reach.matched} matched "
                                                      "while in force): the scenario did not test it"))
            else:
                checks.append(Check(self.name, True, f"{reach.step}: answered {reach.answered} of "
                                                     f"{reach.matched} matching request(s)"))
        return checks
