"""How a record is read out of a sink message, as the target definition's ``[record]`` says.

The bundled exporter writes ``{"id": ..., "key": ..., "payload": "<text>"}``; a change-data-capture
connector writes an envelope around the row (Debezium: ``{"before": ..., "after": {"id": ...,
"payload": "<base64 of the bytea>"}, "op": "c", ...}``, and a tombstone, an empty message, after a
delete). A format names the dotted paths of the id, key and payload, how the payload is encoded,
and which messages are not records at all (no row image: a delete, a tombstone), so they are
skipped rather than reported as unexpected.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Literal, NamedTuple

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

_STRICT = ConfigDict(strict=True, extra="forbid")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
Path = Annotated[str, Field(min_length=1, max_length=200, pattern=rf"^{_NAME}(\.{_NAME})*$")]


class NotARecord:
    """What a message decodes to when it carries no row (a tombstone, a delete): skipped."""


NOT_A_RECORD = NotARecord()


class Fields(NamedTuple):
    """What a message carries: the row's id, its payload, the operation letter, the before image's payload."""

    record_id: int | None
    payload: str | bytes | None
    op: str = ""
    before: str | bytes | None = None
    tx: int | None = None


NOT_OF_THIS_SHAPE = Fields(None, None)


@dataclass(frozen=True, config=_STRICT)
class RecordFormat:
    id: Path = "id"
    key: Path = "key"
    payload: Path = "payload"
    # text: the payload is the record's text; base64: its bytes, base64-encoded (bytea through a JSON converter)
    payload_encoding: Literal["text", "base64"] = "text"
    # A message whose value at this path is null or absent carries no row: not a record (empty: none such).
    row: Annotated[str, Field(max_length=200)] = ""
    # Change events (a change workload): where the operation sits ("" : every message is an insert),
    # which values mean an insert, an update and a delete, and where a delete names its row (a
    # delete carries no after image: Debezium's "before.id"; "" : the id path).
    op: Annotated[str, Field(max_length=200, pattern=rf"^({_NAME}(\.{_NAME})*)?$")] = ""
    inserts: tuple[Annotated[str, Field(min_length=1, max_length=20)], ...] = ("c", "r")
    updates: tuple[Annotated[str, Field(min_length=1, max_length=20)], ...] = ("u",)
    deletes: tuple[Annotated[str, Field(min_length=1, max_length=20)], ...] = ("d",)
    delete_id: Annotated[str, Field(max_length=200, pattern=rf"^({_NAME}(\.{_NAME})*)?$")] = ""
    # Where an update's or delete's before image keeps the old payload ("" : the target has none):
    # what replica identity FULL gives a CDC connector (knob replica_identity), checked per change.
    before_payload: Annotated[str, Field(max_length=200, pattern=rf"^({_NAME}(\.{_NAME})*)?$")] = ""
    # Where a change event names its source transaction (a whole number): a target whose [changes]
    # says transactions = "marked" is held to one mark per transaction.
    transaction: Annotated[str, Field(max_length=200, pattern=rf"^({_NAME}(\.{_NAME})*)?$")] = ""

    @property
    def plain(self) -> bool:
        """The bundled exporter's own shape, which the sink reader decodes on its fast path (its
        change mode adds a top-level "op" with the default letters and "tx", which that path reads too)."""
        return self in (RecordFormat(), RecordFormat(op="op"), RecordFormat(op="op", transaction="tx"))

    def problem(self) -> tuple[str, str] | None:
        """(field, what is wrong) across fields: one letter meaning two operations."""
        letters = [*self.inserts, *self.updates, *self.deletes]
        twice = sorted({x for x in letters if letters.count(x) > 1})
        return ("deletes", f"{twice[0]!r} is given for two operations") if twice else None

    def operation(self, letter: str) -> str:
        """A message's operation as the judge names it: insert, update, delete, or "" (unknown)."""
        if not letter:
            return "insert"  # no operation field: a message is a row
        return ("insert" if letter in self.inserts else "update" if letter in self.updates
                else "delete" if letter in self.deletes else "")

    def fields(self, raw: bytes) -> Fields | NotARecord:
        """(record id, payload, operation letter, before image's payload) of one message; (None,
        None, "", None) when it is not of this shape (the reconciler reports it as unexpected),
        NOT_A_RECORD when it carries no row (a tombstone; a delete, unless the format names
        where operations sit)."""
        if not raw:
            return NOT_A_RECORD if self.row or self.op else NOT_OF_THIS_SHAPE  # a tombstone
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return NOT_OF_THIS_SHAPE
        letter = _walk(data, self.op) if self.op else ""
        letter = letter if isinstance(letter, str) else ""
        before = self._payload(_walk(data, self.before_payload)) if self.before_payload else None
        tx = _whole(_walk(data, self.transaction)) if self.transaction else None
        if self.op and letter in self.deletes:
            return Fields(_whole(_walk(data, self.delete_id or self.id)), None, letter, before, tx)
        if self.row and _walk(data, self.row) is None:
            return NOT_A_RECORD
        record_id = _whole(_walk(data, self.id))
        if record_id is None:
            return NOT_OF_THIS_SHAPE
        return Fields(record_id, self._payload(_walk(data, self.payload)), letter, before, tx)

    def _payload(self, value: object) -> str | bytes | None:
        if not isinstance(value, str):
            return None
        if self.payload_encoding == "text":
            return value
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _walk(data: object, path: str) -> object:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


FieldsOf = Callable[[bytes], "Fields | NotARecord"]
