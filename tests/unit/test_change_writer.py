"""The change writer's drawing, without a database: rows drawn from the live ones in constant
time, never twice in one transaction, the same for the same seed."""

from __future__ import annotations

from harness.model.changes import ChangeMix
from harness.rig.changes import ChangeWriter


def _writer(seed: int = 3) -> ChangeWriter:
    return ChangeWriter("postgresql://unused", "t", ChangeMix(transactions=1.0, transaction_size=(5, 9)), seed=seed,
                        size=100, key_prefix="s")


def test_live_rows_stay_consistent_through_keeps_and_drops() -> None:
    writer = _writer()
    for row in range(1, 101):
        writer._keep(row, "k")
    for row in range(1, 101, 3):
        writer._drop(row)
    writer._drop(1)  # twice: nothing more happens
    assert sorted(writer._rows) == sorted(writer.live) and len(writer._rows) == 66
    assert all(writer._rows[i] == row for row, i in writer._where.items())


def test_a_transaction_never_changes_one_row_twice_and_the_draw_is_seeded() -> None:
    writer, again = _writer(), _writer()
    for w in (writer, again):
        for row in range(1, 21):
            w._keep(row, "k")
    plans = [writer._plan(writer._size()) for _ in range(50)]
    assert plans == [again._plan(again._size()) for _ in range(50)]
    for plan in plans:
        rows = [p.row for p in plan if p.row is not None]
        assert len(rows) == len(set(rows)) and 5 <= len(plan) <= 9
    operations = {p.operation for plan in plans for p in plan}
    assert operations == {"insert", "update", "key_update", "delete", "key_change"}
