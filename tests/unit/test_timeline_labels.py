"""Fault-window labels on the timeline charts never overlap (issue 29): ``reset_peer(ti…`` was
drawn over ``postgres link flapping`` when their windows overlapped. Laid out in rows, checked
in a real browser (Chromium's own text metrics, not our estimate)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.report.html_report import Window, label_rows, svg_chart

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOWS = [Window(1.0, 6.0, "postgres link flapping (2 s down, 1 s up)"), Window(1.2, 3.0, "reset_peer(timeout=0)"),
           Window(1.3, 9.0, "kafka followers cut off the partition leader, the ISR shrinking"),
           Window(2.0, 2.5, "pause"), Window(8.0, 9.0, "kill exporter"), Window(8.1, 8.6, "clock jump +30 s")]


def test_labels_that_would_meet_go_on_rows_of_their_own_and_others_share() -> None:
    rows = label_rows([(100.0, 30), (110.0, 20), (400.0, 10), (120.0, 5)])
    assert rows == [0, 1, 0, 2]  # the third starts past the first's end: back on row 0


def test_a_chart_with_more_rows_than_room_grows_instead_of_crowding() -> None:
    plain = svg_chart([(0.0, 1.0)], WINDOWS[:1], "t", "#000", 10.0)
    crowded = svg_chart([(0.0, 1.0)], WINDOWS, "t", "#000", 10.0)
    assert 'height="130"' in plain and 'height="130"' not in crowded


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium; .ci/run installs it)")
def test_no_two_labels_overlap_in_a_browser(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "chart.html"
    page_file.write_text("<!DOCTYPE html><html><body>" + svg_chart([(0.0, 1.0), (10.0, 2.0)], WINDOWS, "t", "#000",
                                                                   10.0) + "</body></html>")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 400})
            page.goto(page_file.as_uri())
            boxes = page.eval_on_selector_all(
                "text.window-label", "els => els.map(e => { const b = e.getBBox(); "
                "return [b.x, b.y, b.x + b.width, b.y + b.height, e.textContent]; })")
        finally:
            browser.close()
    assert len(boxes) == len(WINDOWS)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, f"{a[4]!r} overlaps {b[4]!r}: {a[:4]} and {b[:4]}"
