"""Turning rows into bytes, strictly: a row that cannot be represented is an error, never a '?'."""

from __future__ import annotations

import json

from exporter import defects
from exporter.errors import PermanentRecordError


def _errors() -> str:
    # The incident's "quick fix": errors='replace' turns what cannot be encoded into '?' silently.
    return "replace" if defects.on("lossy_encoding") else "strict"


def decode_payload(record_id: int, payload: bytes) -> str:
    """The source stores UTF-8 text; anything else is a malformed row."""
    try:
        return payload.decode("utf-8", errors=_errors())
    except UnicodeDecodeError as exc:
        raise PermanentRecordError(record_id, "malformed_row",
                                   f"payload is not valid UTF-8 at byte {exc.start}: {exc.reason}") from exc


def encode_text(record_id: int, text: str, encoding: str) -> bytes:
    try:
        return text.encode(encoding, errors=_errors())
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        points = " ".join(f"U+{ord(c):04X}" for c in bad)
        detail = f"{bad!r} ({points}) at position {exc.start} cannot be encoded in {encoding}"
        raise PermanentRecordError(record_id, "unencodable", detail) from exc


_dumps = json.JSONEncoder(ensure_ascii=False).encode


def record_json(record_id: int, key: str, text: str) -> str:
    # Same bytes as json.dumps of the dict, without building one per record (hot path).
    return f'{{"id":{record_id:d},"key":{_dumps(key)},"payload":{_dumps(text)}}}'
