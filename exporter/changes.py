"""Change mode: the reader pages through the change log a trigger keeps beside the source table
(``<source_table>_changes``: one row per change, numbered from a sequence inside the changing
transaction, so the same settling rules as for the source's rows hold) and each change becomes a
change event: ``{"id": <row id>, "key": ..., "payload": <after image, null for a delete>,
"op": "c" | "u" | "d", "seq": <change number>, "tx": <transaction id>}``. A primary-key change is
logged by the trigger as a delete of the old id and an insert of the new one, in one transaction.

The Kafka message key is the row id (not the change number, as a row's record id is in rows
mode), so that every change of one row lands in one partition, in order.
"""

from __future__ import annotations

from exporter import defects
from exporter.encoding import _dumps, decode_payload
from exporter.source import Row

OPS = frozenset({"c", "u", "d"})


def change_value(row: Row) -> bytes:
    """A change as its event's bytes; a delete carries no payload."""
    text = None if row.payload is None else decode_payload(row.row_id, row.payload)
    payload = "null" if text is None else _dumps(text)
    return (f'{{"id":{row.row_id:d},"key":{_dumps(row.key)},"payload":{payload},"op":{_dumps(row.op)},'
            f'"seq":{row.id:d},"tx":{row.tx:d}}}').encode()


def row_key(value: bytes) -> bytes:
    """The row id of a change event's bytes (what change_value wrote first): its message key."""
    return value[6:value.index(b",", 6)]


def changed(rows: list[Row]) -> list[Row]:
    """The changes of a page to deliver: all of them, in order (the seeded defects of change mode
    live here, where such shortcuts are written)."""
    if defects.on("deletes_dropped"):
        # The bug: "a change without an after image has nothing to export".
        return [row for row in rows if row.payload is not None]
    if defects.on("changes_coalesced_per_page"):
        # The bug: "only the latest state of a row matters": a page keeps each row's last change.
        last = {row.row_id: n for n, row in enumerate(rows)}
        return [row for n, row in enumerate(rows) if last[row.row_id] == n]
    if defects.on("key_change_as_update"):
        return _key_changes_as_updates(rows)
    return rows


def _key_changes_as_updates(rows: list[Row]) -> list[Row]:
    """The bug: a delete followed in the same transaction by an insert of another id is taken for
    a key change and sent as one update of the new id; the old id's delete is never sent."""
    kept: list[Row] = []
    for n, row in enumerate(rows):
        following = rows[n + 1] if n + 1 < len(rows) else None
        if row.op == "d" and following is not None and following.op == "c" and following.tx == row.tx \
                and following.row_id != row.row_id:
            continue
        previous = rows[n - 1] if n else None
        if row.op == "c" and previous is not None and previous.op == "d" and previous.tx == row.tx \
                and previous.row_id != row.row_id:
            row = row._replace(op="u")
        kept.append(row)
    return kept
