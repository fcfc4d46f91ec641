"""Knobs instead of a target's variables; target definitions validated with file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalogue.registry import discover
from harness.model.knobs import KNOBS, scenario_knobs
from harness.model.target import BUNDLED, KnobMissing, TargetDefinition, TargetError


def test_no_catalogue_scenario_names_a_targets_own_variables() -> None:
    for scenario in discover().values():
        assert scenario.exporter_env == {}, f"{scenario.name} sets {scenario.exporter_env}: name knobs instead"
        assert set(scenario.knobs) <= set(KNOBS), scenario.name


def test_the_bundled_target_maps_every_knob_the_catalogue_uses() -> None:
    target = TargetDefinition.load()
    for scenario in discover().values():
        env = target.knob_env(scenario_knobs(scenario.sink, scenario.knobs))
        assert all(key.startswith("EXPORTER_") for key in env), scenario.name


def test_a_file_sink_scenario_needs_the_sink_knob() -> None:
    assert scenario_knobs("file", {"batch_size": "5"}) == {"sink": "file", "batch_size": "5"}
    assert scenario_knobs("kafka", {}) == {}


def test_a_target_without_a_knob_says_which(tmp_path: Path) -> None:
    text = BUNDLED.read_text().split("[knobs]")[0] + '[knobs]\nbatch_size = "X_BATCH"\n'
    (tmp_path / "t.toml").write_text(text)
    target = TargetDefinition.load(tmp_path / "t.toml")
    assert target.knob_env({"batch_size": "7"}) == {"X_BATCH": "7"}
    with pytest.raises(KnobMissing, match="has no knob 'delivery_timeout_ms'"):
        target.knob_env({"delivery_timeout_ms": "1500"})


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda t: t.replace('name = "bundled-exporter"', "name = 42"), "name: Input should be a valid string"),
    (lambda t: t.replace('ready_path = "/healthz"', 'ready_path = "healthz"'), "ready_path: String should match"),
    (lambda t: t.replace('batch_size = "EXPORTER_BATCH_SIZE"', 'batch_size = 5'), "knobs.batch_size: Input should "
     "be a valid string"),
    (lambda t: t.replace('batch_size = "EXPORTER_BATCH_SIZE"', 'batch_sized = "X"'), "knobs.batch_sized: not a knob"),
    (lambda t: "colour = 1\n" + t, "colour: Unexpected keyword argument"),
])
def test_a_bad_target_definition_names_its_line_and_field(tmp_path: Path, edit, fragment: str) -> None:  # noqa: ANN001
    path = tmp_path / "bad.toml"
    path.write_text(edit(BUNDLED.read_text()))
    with pytest.raises(TargetError) as info:
        TargetDefinition.load(path)
    message = str(info.value)
    assert fragment in message and message.startswith(f"{path}:")
    assert message.split(":")[1].isdigit(), message  # a line number, not '?'


def test_sentinel_discovery_and_its_placeholders_go_together(tmp_path: Path) -> None:
    sentinel = BUNDLED.parent / "bundled-exporter-sentinel.toml"
    assert TargetDefinition.load(sentinel).redis_discovery == "sentinel"
    told_nothing = tmp_path / "told_nothing.toml"
    told_nothing.write_text(sentinel.read_text().replace('EXPORTER_REDIS_SENTINELS = "{redis_sentinels}"\n', "")
                            .replace("extends = \"bundled-exporter.toml\"", f"extends = {str(BUNDLED.name)!r}"))
    (tmp_path / BUNDLED.name).write_text(BUNDLED.read_text())
    with pytest.raises(TargetError, match=r"told_nothing.toml:\d+: redis_discovery: sentinel, but no value names"):
        TargetDefinition.load(told_nothing)
    no_sentinel = tmp_path / "no_sentinel.toml"
    no_sentinel.write_text(sentinel.read_text().replace('redis_discovery = "sentinel"\n', ""))
    with pytest.raises(TargetError, match=r"no_sentinel.toml:\d+: env.EXPORTER_REDIS_SENTINELS: a Sentinel"):
        TargetDefinition.load(no_sentinel)
