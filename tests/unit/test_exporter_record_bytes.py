"""The reader's records are encoded in one C call (``record_bytes``): the same bytes as the
JSON they were before, for any key and payload text (control characters, quotes, backslashes,
line and paragraph separators, text outside the BMP)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.encoding import record_bytes


def record_json(record_id: int, key: str, text: str) -> str:
    """The bytes the reader wrote before (``json.dumps`` of the dict, compact, not ASCII-escaped)."""
    return json.dumps({"id": record_id, "key": key, "payload": text}, ensure_ascii=False, separators=(",", ":"))


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)  # no lone surrogates: not UTF-8 text


@settings(max_examples=500, deadline=None, derandomize=True)
@given(record_id=st.integers(min_value=0, max_value=2**63 - 1), key=TEXT, text=TEXT)
def test_record_bytes_are_the_record_json_bytes(record_id: int, key: str, text: str) -> None:
    encoded = record_bytes(record_id, key, text)
    assert encoded == record_json(record_id, key, text).encode("utf-8")
    assert json.loads(encoded) == {"id": record_id, "key": key, "payload": text}


def test_the_characters_json_escapes_are_escaped_alike() -> None:
    text = "".join(chr(c) for c in range(0x20)) + '"\\/\u2028\u2029\x7f中文\U0001f600'
    assert record_bytes(7, "k\n", text) == record_json(7, "k\n", text).encode("utf-8")
