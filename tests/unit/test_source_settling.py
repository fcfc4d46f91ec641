"""Which rows the reader may move its checkpoint through: pure logic, server facts given."""

from __future__ import annotations

from exporter.source import Page, Row, blocking_writers, settled_prefix, xid_precedes


def rows(*xmins: int) -> list[Row]:
    return [Row(n + 1, "k", b"p", x) for n, x in enumerate(xmins)]


def test_xid_order_wraps_around() -> None:
    assert xid_precedes(100, 200) and not xid_precedes(200, 100)
    assert xid_precedes(0xFFFFFFF0, 5 + 3)  # just before the wrap precedes just after it
    assert xid_precedes(2, 1000)  # frozen rows are older than anything running


def gapped(*ids: int) -> list[Row]:
    return [Row(i, "k", b"p", 600) for i in ids]


def test_no_writer_of_the_table_in_progress_settles_everything() -> None:
    page = blocking_writers(in_progress=[500], writers=[], running=[500])._replace(rows=gapped(2, 4))
    assert settled_prefix(page, after=0) == page.rows  # 500 writes elsewhere: it holds nothing back here


def test_rows_above_a_gap_wait_for_an_open_writer_of_the_table() -> None:
    page = blocking_writers(in_progress=[500], writers=[500], running=[500])._replace(rows=gapped(1, 3, 4))
    assert [r.id for r in settled_prefix(page, after=0)] == [1]  # id 2 may be the open writer's


def test_a_writer_that_finished_after_the_snapshot_still_counts() -> None:
    # In progress when the rows were read, gone from pg_locks a moment later: it may have written
    # rows the snapshot could not see, so rows above a gap wait for the next page.
    page = blocking_writers(in_progress=[500], writers=[], running=[])._replace(rows=gapped(2))
    assert settled_prefix(page, after=0) == []


def test_a_lock_holder_without_a_transaction_id_holds_rows_above_a_gap() -> None:
    # It may have taken an id already (nextval comes before the row, and the transaction id with it).
    page = blocking_writers(in_progress=[], writers=[-1], running=[])._replace(rows=gapped(10, 12))
    assert [r.id for r in settled_prefix(page, after=9)] == [10] and page.unknown_writer


def test_nothing_known_is_nothing_blocking() -> None:
    page = Page(rows(7, 8))
    assert settled_prefix(page, after=0) == page.rows


def test_an_older_writer_that_took_ids_after_a_younger_one_does_not_skip_its_rows() -> None:
    # Found by the Locust load test (1 run in 4 lost one record): transaction 100 took id 1506,
    # transaction 101 took 1507, then 100 took 1508 and committed while 101 stayed open. Both
    # visible rows are older than the open writer, yet 1507 is below them: the gap must hold.
    page = blocking_writers(in_progress=[101], writers=[101], running=[101])._replace(
        rows=[Row(1506, "k", b"p", 100), Row(1508, "k", b"p", 100)])
    assert [r.id for r in settled_prefix(page, after=1505)] == [1506]


def test_contiguous_ids_settle_whoever_is_still_writing() -> None:
    # Every id after the checkpoint is visible: whatever an open writer commits later has higher ids.
    page = blocking_writers(in_progress=[500], writers=[500], running=[500])._replace(rows=rows(400, 600, 401))
    assert settled_prefix(page, after=0) == page.rows


def test_a_gap_with_nobody_writing_is_a_rolled_back_id() -> None:
    page = Page([Row(5, "k", b"p", 10), Row(9, "k", b"p", 11)])
    assert settled_prefix(page, after=3) == page.rows


def test_a_writer_above_the_snapshots_xmax_is_not_listed_but_still_blocks() -> None:
    # Postgres's snapshot "732:732:" lists nobody in progress, yet transaction 732 is (its id is
    # at xmax): it holds the table's write lock, and that is what counts.
    page = blocking_writers(in_progress=[], writers=[732], running=[732])._replace(rows=gapped(1, 3))
    assert page.blocking == (732,) and [r.id for r in settled_prefix(page, after=0)] == [1]


def test_a_transaction_finished_since_the_snapshot_holds_rows_above_a_gap() -> None:
    page = Page(gapped(1, 3), completed_since=True)
    assert [r.id for r in settled_prefix(page, after=0)] == [1]


def test_a_gap_is_passed_once_every_writer_seen_with_it_has_finished() -> None:
    from exporter.source import GapWatch

    watch = GapWatch()
    first = blocking_writers(in_progress=[], writers=[732], running=[732])._replace(rows=gapped(1, 3), xmax=732)
    assert [r.id for r in watch.settle(first, after=0)] == [1]
    still = blocking_writers(in_progress=[], writers=[732, 740], running=[732, 740])._replace(
        rows=gapped(3), xmax=733, xip=frozenset({732}))
    assert watch.settle(still, after=1) == []  # 732 still open: id 2 may be its
    # 732 finished before this snapshot and id 2 is still missing: rolled back. 740 (another
    # writer, come later) cannot hold it: it was not writing when the gap was first seen.
    gone = blocking_writers(in_progress=[740], writers=[740], running=[740])._replace(
        rows=gapped(3, 4), xmax=741, xip=frozenset({740}))
    assert [r.id for r in watch.settle(gone, after=1)] == [3, 4]


def test_a_gap_seen_with_a_writer_without_a_transaction_id_is_watched_again() -> None:
    from exporter.source import GapWatch

    watch = GapWatch()
    unknown = blocking_writers(in_progress=[], writers=[-1], running=[])._replace(rows=gapped(1, 3), xmax=10)
    assert [r.id for r in watch.settle(unknown, after=0)] == [1]
    later = blocking_writers(in_progress=[], writers=[12], running=[12])._replace(rows=gapped(3), xmax=13)
    assert watch.settle(later, after=1) == []  # the unnamed writer may be 12, still open
    done = blocking_writers(in_progress=[], writers=[], running=[])._replace(rows=gapped(3), xmax=14,
                                                                            completed_since=True)
    assert [r.id for r in watch.settle(done, after=1)] == [3]
