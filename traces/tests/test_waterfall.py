"""The waterfall of a recorded read: its geometry, and how a real browser draws it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from files.storage import get_store
from testing.browser import launch_chromium
from testing.fixtures import TEST_CHUNK_SIZE, delayed
from testing.uploads import payload
from testing.wsgi_client import call_wsgi
from traces.models import RecordedTrace
from traces.recorder import record_spans
from traces.waterfall import waterfall_layout

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


@pytest.fixture
def slow_s3(settings, s3_server, monkeypatch):
    """The S3 store, with a fixed 50 ms added to every chunk fetch so that fetches overlap."""
    settings.MINIO_ENDPOINT = s3_server.endpoint
    store = get_store()
    store.ensure_bucket()
    monkeypatch.setattr(store.objects, "get", delayed(store.objects.get, 0.05))
    return store


def recorded_read(spans, chunks: int, reads: int = 1) -> RecordedTrace:
    response = call_wsgi("PUT", "/write?name=w.bin", body=payload(chunks * C))
    file_id = json.loads(response.body)["file_id"]
    for _ in range(reads):
        spans.clear()
        assert call_wsgi("GET", f"/read/{file_id}").status == 200
    record_spans(spans.get_finished_spans(), keep=10)
    return RecordedTrace.objects.get(file_id=file_id, name="GET /read/{file_id}")


def test_ten_chunk_read_has_a_bar_per_span_nested_and_overlapping(spans, slow_s3):
    trace = recorded_read(spans, chunks=10)

    waterfall = waterfall_layout(list(trace.spans.all()))

    assert len(waterfall.bars) == trace.span_count
    depth = {bar.span.name: bar.depth for bar in waterfall.bars}
    assert depth["GET /read/{file_id}"] == 0
    assert depth["read_file"] == 1
    assert depth["fetch_chunks_parallel"] == 2
    assert all(depth[f"download_chunk_{i}"] == 3 for i in range(10))
    names = [bar.span.name for bar in waterfall.bars]
    assert names.index("fetch_chunks_parallel") < names.index("download_chunk_0")
    downloads = [bar for bar in waterfall.bars if bar.span.name.startswith("download_chunk_")]
    for one in downloads:
        for other in downloads:
            assert one.left < other.right and other.left < one.right  # they overlap
    root = waterfall.bars[0]
    assert (root.left, round(root.width, 6)) == (0, 100)
    assert all(bar.left >= 0 and bar.right <= 100.0001 for bar in waterfall.bars)


def test_cache_hit_waterfall_has_no_db_lookup(spans):
    trace = recorded_read(spans, chunks=2, reads=2)  # the second read hits the cache

    names = {bar.span.name for bar in waterfall_layout(list(trace.spans.all())).bars}

    assert trace.cache_hit is True
    assert "cache_lookup" in names
    assert "db_lookup" not in names


@pytest.mark.browser
def test_chromium_renders_overlapping_download_bars(
    spans, slow_s3, live_server, admin_user, tmp_path
):
    """Headless Chromium loads the waterfall page of a real read; the bars are drawn overlapping."""
    from playwright.sync_api import sync_playwright

    trace = recorded_read(spans, chunks=10)
    screenshot = Path(os.environ.get("WATERFALL_SCREENSHOT") or tmp_path / "waterfall.png")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "password")
        page.click("input[type=submit]")
        page.goto(f"{live_server.url}/admin/traces/recordedtrace/{trace.trace_id}/change/")
        boxes = [
            page.locator(f'details[data-span="download_chunk_{i}"] .wf-bar').bounding_box()
            for i in range(10)
        ]
        row_count = page.locator("details.wf-row").count()
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()

    assert row_count == trace.span_count
    assert all(box and box["width"] > 0 for box in boxes)
    for one in boxes:
        for other in boxes:
            assert one["x"] < other["x"] + other["width"] and other["x"] < one["x"] + one["width"]
    assert screenshot.stat().st_size > 10_000
