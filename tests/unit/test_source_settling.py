"""Which rows the reader may move its checkpoint through: pure logic, server facts given."""

from __future__ import annotations

from exporter.source import Page, Row, blocking_writers, settled_prefix, xid_precedes


def rows(*xmins: int) -> list[Row]:
    return [Row(n + 1, "k", b"p", x) for n, x in enumerate(xmins)]


def test_xid_order_wraps_around() -> None:
    assert xid_precedes(100, 200) and not xid_precedes(200, 100)
    assert xid_precedes(0xFFFFFFF0, 5 + 3)  # just before the wrap precedes just after it
    assert xid_precedes(2, 1000)  # frozen rows are older than anything running


def test_no_writer_of_the_table_in_progress_settles_everything() -> None:
    page = blocking_writers(in_progress=[500], writers=[], running=[500])._replace(rows=rows(600, 601))
    assert settled_prefix(page) == page.rows  # 500 writes elsewhere: it holds nothing back here


def test_rows_committed_after_an_open_writer_of_the_table_wait_for_it() -> None:
    page = blocking_writers(in_progress=[500], writers=[500], running=[500])._replace(rows=rows(400, 600, 401))
    assert [r.id for r in settled_prefix(page)] == [1]  # 600 is younger than the open writer 500


def test_a_writer_that_finished_after_the_snapshot_still_counts() -> None:
    # In progress when the rows were read, gone from pg_locks a moment later: it may have written
    # rows the snapshot could not see, so rows younger than it wait for the next page.
    page = blocking_writers(in_progress=[500], writers=[], running=[])._replace(rows=rows(600))
    assert settled_prefix(page) == []


def test_a_lock_holder_without_a_transaction_id_holds_everything_for_now() -> None:
    page = blocking_writers(in_progress=[], writers=[-1], running=[])._replace(rows=rows(10))
    assert settled_prefix(page) == [] and page.unknown_writer


def test_nothing_known_is_nothing_blocking() -> None:
    page = Page(rows(7, 8))
    assert settled_prefix(page) == page.rows
