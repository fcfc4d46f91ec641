"""Bad toxics are refused before they reach the server, with a message that says why."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError, ToxiproxyError
from harness.infra.toxiproxy import TOXIC_ATTRIBUTES, validate_toxic


@pytest.mark.parametrize("type_,stream,toxicity,attrs,fragment", [
    ("lag", "downstream", 1.0, {}, "unknown toxic type 'lag'"),
    ("latency", "sideways", 1.0, {"latency": 1}, "stream must be one of"),
    ("latency", "upstream", 1.5, {"latency": 1}, "toxicity must be within 0..1"),
    ("bandwidth", "upstream", 1.0, {"speed": 1}, "unknown attributes ['speed']"),
    ("timeout", "upstream", 1.0, {"timeout": -1}, "non-negative integers"),
    ("slicer", "upstream", 1.0, {"delay": 0.5}, "non-negative integers"),
])
def test_invalid_toxics_are_refused_with_the_reason(type_: str, stream: str, toxicity: float,
                                                    attrs: dict, fragment: str) -> None:
    with pytest.raises(ToxiproxyError) as info:
        validate_toxic(type_, stream, toxicity, attrs)
    assert fragment in str(info.value)
    assert isinstance(info.value, HarnessError)


def test_every_toxiproxy_toxic_type_is_known() -> None:
    assert set(TOXIC_ATTRIBUTES) == {"latency", "bandwidth", "slow_close", "timeout", "reset_peer",
                                     "slicer", "limit_data"}
    for type_, attrs in TOXIC_ATTRIBUTES.items():
        validate_toxic(type_, "upstream", 0.0, {a: 0 for a in attrs})
