"""Headless Chromium (Debian's package) through Playwright, started the way this closed network
needs: no sandbox, no GPU, none of its background connections."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
    )


AXE = Path(__file__).resolve().parent / "axe/node_modules/axe-core/axe.min.js"


def sign_in(page: Any, base_url: str, username: str, password: str) -> None:
    """Through the web app's sign-in form, as a member would."""
    page.goto(f"{base_url}/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """What axe-core finds wrong with the page, serious or critical. The page's context must
    bypass its Content-Security-Policy: axe is injected as a script of no origin."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => (await axe.run()).violations")
    return [
        {"id": found["id"], "nodes": [node["target"] for node in found["nodes"]]}
        for found in results
        if found["impact"] in ("serious", "critical")
    ]


def upload_rows(page: Any) -> list[dict[str, str]]:
    """The upload panel's rows: each file's path and state (waiting, uploading, paused, done,
    failed) and its text."""
    return page.eval_on_selector_all(
        "#upload-list li",
        "rows => rows.map(r => ({path: r.dataset.path, state: r.dataset.state,"
        " text: r.querySelector('.upload-state').textContent}))",
    )
