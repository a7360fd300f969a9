"""Prometheus's own query page, in headless Chromium, showing the requests by route that the
service exported under a load (the README's screenshot: `make screenshot`)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bench.load import run_load
from testing.browser import launch_chromium
from testing.prometheus import PrometheusServer
from testing.servers import EMBEDDED, GunicornServer

QUERY = (
    "sum by (http_route, http_response_status_code) (http_server_request_duration_seconds_count)"
)
LOADED = '{http_route=~"/write|/read/.file_id.|/files/.file_id."}'


@pytest.mark.browser
def test_prometheus_shows_the_requests_by_route(tmp_path):
    from playwright.sync_api import sync_playwright

    service = GunicornServer(tmp_path / "service", **EMBEDDED, CHUNK_SIZE_BYTES=str(64 * 1024))
    prometheus = PrometheusServer(tmp_path / "prometheus", f"127.0.0.1:{service.port}")
    screenshot = Path(os.environ.get("METRICS_SCREENSHOT") or tmp_path / "prometheus.png")
    try:
        for seed in range(8):  # some seconds of load, so the rate has points to draw
            run_load(service.url, clients=4, operations=60, chunk_size=64 * 1024, seed=seed)
        routes = prometheus.wait_for(
            f"sgn(sum by (http_route) (http_server_request_duration_seconds_count{LOADED}))",
            {"/write": 1.0, "/read/{file_id}": 1.0, "/files/{file_id}": 1.0},
            "http_route",
        )
        graph = {"g0.expr": QUERY, "g0.tab": "1"}  # the table of the query's series
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{prometheus.url}/graph?{urlencode(graph)}")
            page.get_by_text('http_route="/read/{file_id}"').first.wait_for()  # the result
            page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
    finally:
        prometheus.stop()
        service.stop()

    assert {"/write", "/read/{file_id}", "/files/{file_id}"} <= set(routes)
    assert screenshot.stat().st_size > 10_000
