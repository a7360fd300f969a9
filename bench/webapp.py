"""The web app's upload: a big file sent through the page (tus-js-client in Chromium, as a member
does it) ÷ tuspy sending the same file to the same service in PATCHes of the same size."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import MIB, Harness, medians_interleaved
from testing.browser import launch_chromium, sign_in
from testing.servers import GunicornServer
from testing.uploads import send

FIGURES = ["web_upload_vs_tuspy"]
PATCH_SIZE = 8 * MIB  # web/static/web/upload.js sends PATCHes of this size
PASSWORD = "bench password, long enough"


def measure_webapp(harness: Harness) -> None:
    source = harness.folder / "web-upload.bin"
    with source.open("wb") as out:
        block = bytes(range(256)) * 4096  # 1 MiB; what the bytes are costs nothing here
        for _ in range(harness.plan.rss_file // MIB):
            out.write(block)
    env = {**harness.s3_settings("bench-web"), "API_OPEN": "false"}
    with harness.service("webapp", **env) as server:
        server.manage("create_member", "bench", stdin=PASSWORD + "\n")
        token = server.manage("create_token", "bench").stdout.strip()
        with chromium_page(server) as page:

            def through_page() -> float:
                return rate(source, server, token, lambda: page_upload(page, source))

            def through_tuspy() -> float:
                return rate(source, server, token, lambda: tuspy_upload(server, token, source))

            page_rate, tuspy_rate = medians_interleaved(
                harness.plan.repeats, through_page, through_tuspy
            )
    harness.results.figures["web_upload_vs_tuspy"] = page_rate / tuspy_rate
    harness.results.raw.setdefault("megabytes_per_second", {}).update(
        {"web_upload": page_rate / 1e6, "tuspy_upload": tuspy_rate / 1e6}
    )


@contextmanager
def chromium_page(server: GunicornServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context(base_url=server.url).new_page()
            sign_in(page, server.url, "bench", PASSWORD)
            yield page
        finally:
            browser.close()


def rate(source: Path, server: GunicornServer, token: str, upload: Any) -> float:
    """Bytes a second of one upload; the file is then purged (moto keeps objects in memory)."""
    started = time.perf_counter()
    upload()
    seconds = time.perf_counter() - started
    purge(server, token, source.name)
    return source.stat().st_size / seconds


def page_upload(page: Any, source: Path) -> None:
    """Choose the file on the page and wait until its row says done."""
    page.goto("/")
    page.set_input_files("#pick-files", str(source))
    page.locator("#upload-list li[data-state=done], #upload-list li[data-state=failed]").wait_for(
        timeout=600_000
    )
    state = page.locator("#upload-list li").get_attribute("data-state")
    if state != "done":
        raise RuntimeError(f"the page's upload failed: {page.inner_text('#upload-list')}")


def tuspy_upload(server: GunicornServer, token: str, source: Path) -> None:
    from tusclient import client

    tus = client.TusClient(f"{server.url}/uploads/", headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(
        str(source), chunk_size=PATCH_SIZE, metadata={"filename": source.name}, retries=0
    )
    uploader.upload()


def purge(server: GunicornServer, token: str, name: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    listing = json.loads(send(server, "GET", "/files?path=/", headers=auth).body)
    [file] = [entry for entry in listing["entries"] if entry["name"] == name]
    send(server, "DELETE", f"/files/{file['file_id']}", headers=auth)
    trash = json.loads(send(server, "GET", "/trash", headers=auth).body)
    for item in trash["entries"]:
        send(server, "DELETE", f"/trash/{item['trash_id']}", headers=auth)
