"""Change workloads as input: the mix, an incident file's [workload.changes] and a target's
[changes] are refused with file:line:field when they make no sense, and round-trip when they do."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.catalogue import incident
from harness.catalogue.incident import IncidentError
from harness.model.changes import ChangeMix
from harness.model.target import BUNDLED, TargetDefinition, TargetError
from harness.scenario import Scenario, ScenarioError, Workload

INCIDENT = """[incident]
name = "x"
description = "d"

[workload]
records = 10

[workload.changes]
count = 50
insert = 0.5
update = 0.5
key_update = 0.0
delete = 0.0
key_change = 0.0

[expect]
no_loss = true
"""


@pytest.mark.parametrize("edit,line,fragment", [
    (("update = 0.5", "update = 0.6"), 10, "must sum to 1, not 1.1"),
    (("update = 0.5", "update = nan"), 11, "finite number"),
    (("update = 0.5", "update = inf"), 11, "finite number"),
    (("update = 0.5", "update = -0.5"), 11, "greater than or equal to 0"),
    (("count = 50", "count = -1"), 9, "greater than or equal to 1"),
    (("count = 50", "count = 1000000000"), 9, "less than or equal to 1000000"),
    (("count = 50", 'count = 50\nupsert = 0.1'), 10, "upsert"),
    (("count = 50", 'count = 50\ntransaction_size = [5, 3]'), 10, r"is not \(smallest, largest\)"),
    (("count = 50", 'count = 50\ntransaction_size = [1, 3]'), 10, "greater than or equal to 2"),
    (("insert = 0.5\nupdate = 0.5", "insert = 0.0\nupdate = 1.0"), 10, "must be above 0"),
])
def test_a_nonsense_mix_is_refused_naming_file_line_and_field(tmp_path: Path, edit: tuple[str, str], line: int,
                                                               fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(INCIDENT.replace(*edit))
    with pytest.raises(IncidentError, match=rf"bad\.toml:{line}: .*{fragment}"):
        incident.load(path)


def test_a_mix_round_trips_through_an_incident_file(tmp_path: Path) -> None:
    mix = ChangeMix(count=77, insert=0.4, update=0.3, key_update=0.0, delete=0.2, key_change=0.1,
                    transaction_size=(2, 9), hot=0.5, burst=3)
    scenario = Scenario(name="r", description="d", workload=Workload(records=5, changes=mix)).validate()
    back = incident.load(incident.write(scenario, tmp_path / "r.toml"))
    assert back.workload.changes == mix and back.workload == scenario.workload


def test_a_change_workload_alone_is_not_trivial_and_its_checks_count() -> None:
    only = Scenario(name="c", description="d", workload=Workload(records=0, changes=ChangeMix()))
    assert only.validate() is only
    with pytest.raises(ScenarioError, match="workload.records is 0"):
        Scenario(name="n", description="d", workload=Workload(records=0)).validate()


def test_the_mix_refuses_nan_and_says_what_it_writes() -> None:
    with pytest.raises(ValidationError):
        ChangeMix(update=math.nan)
    assert ChangeMix(insert=1.0, update=0.0, key_update=0.0, delete=0.0, key_change=0.0).operations == {"insert"}
    assert ChangeMix().problem() is None


@pytest.mark.parametrize("edit,fragment", [
    (("delivers = \"every_version\"", "delivers = \"sometimes\""), "changes.delivers"),
    (("operations = [", "operations = [\"upsert\", "), "changes.operations"),
    (("knobs = { source_mode = \"changes\" }", "knobs = { source_mode = \"all\" }"), "source_mode must be one of"),
    (("knobs = { source_mode = \"changes\" }", "knobs = { batch_sizes = \"1\" }"), "changes.knobs.batch_sizes"),
    (("[record]\nop = \"op\"", "[record]\nop = \"op\"\nupdates = [\"c\"]"), "record.deletes: 'c' is given for two"),
    (("[record]\nop = \"op\"\ntransaction = \"tx\"", "[record]\ntransaction = \"tx\""), "need \\[record\\] op"),
    (("transaction = \"tx\"\n", ""), "marked needs \\[record\\] transaction"),
])
def test_a_target_changes_table_that_makes_no_sense_is_refused(tmp_path: Path, edit: tuple[str, str],
                                                                fragment: str) -> None:
    text = BUNDLED.read_text()
    assert edit[0] in text
    path = tmp_path / "t.toml"
    path.write_text(text.replace(*edit))
    with pytest.raises(TargetError, match=rf"t\.toml:\d+: .*{fragment}"):
        TargetDefinition.load(path)


def test_a_target_says_which_operations_it_cannot_carry() -> None:
    bundled = TargetDefinition.load()
    assert bundled.cannot_carry(ChangeMix().operations) is None
    plain = dataclasses.replace(bundled, changes=None)
    assert "carries inserts only" in (plain.cannot_carry(frozenset({"update"})) or "")
