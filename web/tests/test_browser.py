"""The web app in headless Chromium, as a member uses it: signing in, uploading (through
breaks, reloads and refusals), working on the tree, sharing — by mouse and by keyboard alone —
and axe-core's accessibility checks on every page."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.sync_api import expect

from testing.browser import launch_chromium, serious_violations, sign_in, upload_rows
from testing.mysql import own_database
from testing.servers import GunicornServer

pytestmark = pytest.mark.browser

MIB = 1024 * 1024
PASSWORD = "a long test password"
PATCH_SIZE = 8 * MIB  # the page's tus chunk size: one PATCH each


@pytest.fixture(scope="module")
def web_service(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Any]:
    """The service as `make run` serves it (or on MariaDB + S3), with a closed API: the web app
    signs in with a session. Workers and threads answer the browser's parallel uploads."""
    env = {"API_OPEN": "false", "MINIO_ENDPOINT": "", "MINIO_BUCKET": "web"}
    if request.config.getoption("--store") == "s3":
        env["MINIO_ENDPOINT"] = request.getfixturevalue("s3_server").endpoint
    server = GunicornServer(
        tmp_path_factory.mktemp("web"), timeout=120, **env, **own_database("web", workers=2)
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def new_member(service: Any, quota_mb: int | None = None) -> str:
    """A member of the service with PASSWORD (and a quota); their username."""
    username = f"m{uuid.uuid4().hex[:10]}"
    quota = ["--quota-mb", str(quota_mb)] if quota_mb is not None else []
    service.manage("create_member", username, *quota, stdin=PASSWORD + "\n")
    return username


@pytest.fixture
def page(chromium: Any, web_service: Any) -> Iterator[Any]:
    """A new member, signed in, in a tab whose context may use the clipboard."""
    context = chromium.new_context(
        base_url=web_service.url, permissions=["clipboard-read", "clipboard-write"]
    )
    tab = context.new_page()
    tab.username = new_member(web_service)
    sign_in(tab, web_service.url, tab.username, PASSWORD)
    yield tab
    context.close()


def api(page: Any, method: str, url: str, data: Any = None) -> Any:
    """A call to the API under the page's session, with its CSRF token, as the page's script
    makes it."""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    answer = page.request.fetch(url, method=method, headers={"X-CSRFToken": csrf}, data=data)
    assert answer.ok, answer.text()
    return answer


def put(page: Any, path: str, data: bytes) -> str:
    """A file written through the API under the page's session; its id."""
    return api(page, "PUT", f"/write?path={path}", data).json()["file_id"]


def random_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def entries(page: Any, folder: str) -> dict[str, dict[str, Any]]:
    """The folder's listing from the API, under the page's session."""
    answer = page.request.get(f"/files?path={folder}")
    assert answer.ok, answer.text()
    return {entry["name"]: entry for entry in answer.json()["entries"]}


def stored(page: Any, file_id: str) -> bytes:
    answer = page.request.get(f"/read/{file_id}")
    assert answer.ok
    return answer.body()


def wait_for_uploads(page: Any, count: int) -> list[dict[str, str]]:
    """Until `count` uploads have ended (done or failed); their rows."""
    ended = page.locator("#upload-list li[data-state=done], #upload-list li[data-state=failed]")
    ended.nth(count - 1).wait_for(timeout=120_000)
    return upload_rows(page)


def test_an_upload_cut_off_by_the_network_resumes_to_identical_bytes(page, tmp_path):
    source = random_file(tmp_path, "cut.bin", 30 * MIB)
    patches: list[str] = []

    def cut_the_second_patch(route: Any) -> None:
        if route.request.method == "PATCH":
            patches.append(route.request.url)
            if len(patches) == 2:
                return route.abort("internetdisconnected")
        return route.continue_()

    page.route("**/uploads/**", cut_the_second_patch)
    page.set_input_files("#pick-files", str(source))
    rows = wait_for_uploads(page, 1)

    assert rows[0]["state"] == "done", rows
    # 4 PATCHes of 8 MiB carry 30 MiB; the cut one was sent again, to the same upload.
    assert len(patches) == 5 and len(set(patches)) == 1
    file = entries(page, "/")["cut.bin"]
    assert file["file_id"] == patches[0].rsplit("/", 1)[1]
    assert stored(page, file["file_id"]) == source.read_bytes()


def upload_with_the_second_patch_held(page: Any, source: Path) -> str:
    """Start uploading `source` from the page and hold its second PATCH (never sent, never
    answered) until the test lets go; the upload's URL, which has its first 8 MiB by then."""
    created: list[str] = []
    held: list[Any] = []

    def note_creation(response: Any) -> None:
        if response.request.method == "POST" and response.url.endswith("/uploads/"):
            created.append(urljoin(response.url, response.headers["location"]))

    def hold(route: Any) -> None:
        if route.request.method == "PATCH" and not held:
            if getattr(hold, "seen", False):
                held.append(route)
                return
            hold.seen = True  # type: ignore[attr-defined]
        route.continue_()

    page.on("response", note_creation)
    page.route("**/uploads/**", hold)
    page.set_input_files("#pick-files", str(source))
    deadline = time.monotonic() + 60
    while not held:  # Playwright dispatches the route events while the page waits
        assert time.monotonic() < deadline, upload_rows(page)
        page.wait_for_timeout(50)
    page.remove_listener("response", note_creation)
    [upload_url] = created
    offset = page.request.head(upload_url, headers={"Tus-Resumable": "1.0.0"})
    assert offset.headers["upload-offset"] == str(PATCH_SIZE)
    return upload_url


def test_an_upload_broken_by_a_reload_resumes_when_the_file_is_chosen_again(page, tmp_path):
    source = random_file(tmp_path, "reload.bin", 30 * MIB)
    upload_url = upload_with_the_second_patch_held(page, source)
    page.unroute("**/uploads/**")
    page.reload()  # cancels the held PATCH
    created: list[str] = []
    page.on("request", lambda r: created.append(r.url) if r.method == "POST" else None)

    unfinished = page.locator("#unfinished-list li")
    assert unfinished.count() == 1 and "/reload.bin" in unfinished.inner_text()
    page.set_input_files("#pick-files", str(source))
    rows = wait_for_uploads(page, 1)

    assert rows[0]["state"] == "done", rows
    file = entries(page, "/")["reload.bin"]
    assert file["file_id"] == upload_url.rsplit("/", 1)[1]  # the same upload, resumed
    assert created == []  # no new upload was made
    assert stored(page, file["file_id"]) == source.read_bytes()
    expect(page.locator("#unfinished")).to_be_hidden()  # once the listing is fetched again


def test_pausing_and_resuming_an_upload(page, tmp_path):
    source = random_file(tmp_path, "paused.bin", 30 * MIB)
    upload_url = upload_with_the_second_patch_held(page, source)

    page.click('button[aria-label="Pause /paused.bin"]')  # aborts the held PATCH
    page.unroute("**/uploads/**")
    assert upload_rows(page)[0]["state"] == "paused"
    page.click('button[aria-label="Resume /paused.bin"]')
    rows = wait_for_uploads(page, 1)

    assert rows[0]["state"] == "done", rows
    file = entries(page, "/")["paused.bin"]
    assert file["file_id"] == upload_url.rsplit("/", 1)[1]
    assert stored(page, file["file_id"]) == source.read_bytes()


def test_uploading_onto_a_file_makes_a_new_version_of_it(page, tmp_path):
    file_id = put(page, "/same.bin", b"the first version")
    source = random_file(tmp_path, "same.bin", MIB + 1)
    page.reload()

    page.set_input_files("#pick-files", str(source))

    assert wait_for_uploads(page, 1)[0]["state"] == "done"
    assert entries(page, "/")["same.bin"]["file_id"] == file_id
    assert stored(page, file_id) == source.read_bytes()
    versions = page.request.get(f"/files/{file_id}/versions").json()["versions"]
    assert [version["size"] for version in versions] == [MIB + 1, len(b"the first version")]


def test_a_folder_of_nested_files_uploads_with_its_tree(page, tmp_path):
    tree = tmp_path / "survey"
    (tree / "site-a" / "raw").mkdir(parents=True)
    sources = {
        "survey/notes.txt": random_file(tree, "notes.txt", 1000),
        "survey/site-a/log.csv": random_file(tree / "site-a", "log.csv", 3 * MIB + 7),
        "survey/site-a/raw/scan.bin": random_file(tree / "site-a" / "raw", "scan.bin", 1),
    }

    page.set_input_files("#pick-folder", str(tree))
    rows = wait_for_uploads(page, 3)

    assert {row["state"] for row in rows} == {"done"}, rows
    for relative, source in sources.items():
        folder, name = ("/" + relative).rsplit("/", 1)
        entry = entries(page, folder)[name]
        assert entry["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    page.wait_for_selector('tr[data-name="survey"]')  # the listing was refreshed in place


def test_creating_moving_renaming_deleting_restoring_and_versions(page):
    file_id = put(page, "/notes.txt", b"version one")
    put(page, "/notes.txt", b"version two")
    page.goto("/")

    page.fill("#new-folder-name", "archive")
    with page.expect_navigation():
        page.press("#new-folder-name", "Enter")
    with page.expect_navigation():
        page.drag_and_drop('tr[data-name="notes.txt"]', 'tr[data-name="archive"]')
    assert "notes.txt" not in entries(page, "/")
    assert entries(page, "/archive")["notes.txt"]["file_id"] == file_id

    page.goto(f"/app/files/{file_id}")
    page.fill("#rename-name", "minutes.txt")
    with page.expect_navigation():
        page.get_by_role("button", name="Rename", exact=True).click()
    assert list(entries(page, "/archive")) == ["minutes.txt"]
    with page.expect_navigation():
        page.click('button[aria-label^="Restore the version"]')
    assert stored(page, file_id) == b"version one"
    with page.expect_navigation():
        page.get_by_role("button", name="Delete (to the trash)").click()
    assert entries(page, "/archive") == {}

    page.goto("/app/trash")
    with page.expect_navigation():
        page.click('button[aria-label="Restore minutes.txt"]')
    assert entries(page, "/archive")["minutes.txt"]["file_id"] == file_id
    versions = page.request.get(f"/files/{file_id}/versions").json()["versions"]
    assert len(versions) == 3  # one, two, and one restored: nothing lost

    page.goto(f"/app/files/{file_id}")
    page.fill("#copy-path", "/copy.txt")
    with page.expect_navigation():
        page.get_by_role("button", name="Copy", exact=True).click()
    copied = entries(page, "/")["copy.txt"]["file_id"]
    assert page.url.endswith(f"/app/files/{copied}") and stored(page, copied) == b"version one"
    with page.expect_navigation():
        page.get_by_role("button", name="Delete (to the trash)").click()
    page.goto("/app/trash")
    page.once("dialog", lambda dialog: dialog.accept())  # "Purge copy.txt for good?"
    with page.expect_navigation():
        page.click('button[aria-label="Purge copy.txt"]')
    assert page.request.get("/trash").json()["entries"] == []
    assert page.request.get(f"/read/{copied}").status == 404


def tab_to(page: Any, selector: str) -> None:
    """Press Tab until the element has the focus, as someone without a mouse does."""
    target = page.locator(selector).first
    for _ in range(80):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_uploading_and_sharing_with_the_keyboard_alone(page, chromium, web_service, tmp_path):
    source = random_file(tmp_path, "data set.bin", 2 * MIB + 3)
    page.goto("/")

    # Listening before the key press turns Chromium's file-chooser interception on in time
    # (Playwright asks for it without waiting for an answer when a listener is added).
    page.on("filechooser", lambda chooser: None)
    tab_to(page, "#upload-files")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(source))
    assert wait_for_uploads(page, 1)[0]["state"] == "done"
    page.wait_for_selector('tr[data-name="data set.bin"]')
    tab_to(page, 'a[aria-label="Details, versions and sharing of data set.bin"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.select_option("#link-expiry", "86400")  # a <select> is set from the keyboard too
    tab_to(page, "#link-downloads")
    page.keyboard.type("5")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_selector("#new-link-url:focus")
    url = page.input_value("#new-link-url")
    tab_to(page, 'button[data-action="copy-link"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#status:has-text('Link copied')")

    assert page.evaluate("navigator.clipboard.readText()") == url
    assert url.startswith(f"{web_service.url}/s/")
    stranger = chromium.new_context()  # no session
    visitor = stranger.new_page()
    visitor.goto(url)
    assert visitor.locator("h1").inner_text() == "data set.bin"
    with visitor.expect_download() as download:
        visitor.click("text=Download")
    assert Path(download.value.path()).read_bytes() == source.read_bytes()

    page.reload()
    tab_to(page, 'button[aria-label^="Revoke link"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    revoked = visitor.goto(url)
    assert revoked.status == 404 and "Link not found" in visitor.content()
    stranger.close()


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        ("quota", "Not enough space"),
        ("size limit", "Too large"),
        ("folder in the way", "Name conflict"),
    ],
)
def test_refused_uploads_say_why(page, web_service, tmp_path, refusal, message):
    source = random_file(tmp_path, "refused.bin", 2 * MIB)
    if refusal == "quota":
        page.username = new_member(web_service, quota_mb=1)
        page.context.clear_cookies()
        sign_in(page, web_service.url, page.username, PASSWORD)
    elif refusal == "size limit":  # over MAX_UPLOAD_MB (10 GiB): a sparse file, nothing read
        with source.open("r+b") as sparse:
            sparse.truncate(11 * 1024 * MIB)
    else:
        api(page, "POST", "/folders", {"path": "/refused.bin"})
        page.reload()

    page.set_input_files("#pick-files", str(source))
    row = wait_for_uploads(page, 1)[0]

    assert row["state"] == "failed" and row["text"].startswith(message), row
    assert page.locator("#status[role=alert]").inner_text().startswith("/refused.bin: " + message)


def test_browse_and_download_work_without_javascript(chromium, page, web_service):
    put(page, "/papers/draft.txt", b"no script needed")
    context = chromium.new_context(base_url=web_service.url, java_script_enabled=False)
    tab = context.new_page()
    sign_in(tab, web_service.url, page.username, PASSWORD)

    tab.click("text=papers")
    with tab.expect_download() as download:
        tab.click("text=draft.txt")

    assert Path(download.value.path()).read_bytes() == b"no script needed"
    context.close()


def test_every_page_passes_axe_and_fits_a_phone(chromium, page, web_service, tmp_path):
    file_id = put(page, "/reports/summary.txt", b"summary")
    put(page, "/reports/2026/q3.csv", os.urandom(3 * MIB))
    put(page, "/reports/run-41.parquet", os.urandom(700_000))
    api(page, "DELETE", f"/files/{put(page, '/old.txt', b'old')}")
    link = api(page, "POST", f"/files/{file_id}/links", {}).json()["url"]
    folder_id = entries(page, "/")["reports"]["folder_id"]
    pages = [
        "/",
        "/?path=/reports",
        f"/app/files/{file_id}",
        f"/app/folders/{folder_id}",
        "/app/trash",
        "/app/password",
    ]
    screenshot = os.environ.get("WEBAPP_SCREENSHOT")
    for width in (1280, 375):
        context = chromium.new_context(
            base_url=web_service.url, bypass_csp=True, viewport={"width": width, "height": 800}
        )
        tab = context.new_page()
        tab.goto(link)
        assert serious_violations(tab) == [], "share page"
        tab.goto("/app/sign-in")
        assert serious_violations(tab) == [], "sign-in page"
        sign_in(tab, web_service.url, page.username, PASSWORD)
        for path in pages:
            tab.goto(path)
            assert serious_violations(tab) == [], (path, width)
            # Nothing sticks out sideways (wide tables scroll within their own region).
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (path, width)
        if screenshot and width == 1280:  # make screenshot: the README's picture
            tab.goto("/?path=/reports")
            shots = [random_file(tmp_path, name, 5 * MIB) for name in ("scan-1.tif", "scan-2.tif")]
            tab.set_input_files("#pick-files", [str(shot) for shot in shots])
            wait_for_uploads(tab, 2)
            tab.wait_for_selector('tr[data-name="scan-2.tif"]')
            tab.screenshot(path=screenshot, full_page=True)
        context.close()


def test_a_page_whose_session_ended_sends_its_member_to_sign_in(page):
    other_tab = page.context.new_page()
    other_tab.goto("/")
    with other_tab.expect_navigation():
        other_tab.get_by_role("button", name="Sign out").click()

    page.fill("#new-folder-name", "too late")
    with page.expect_navigation():
        page.press("#new-folder-name", "Enter")

    assert page.url.endswith("/app/sign-in?next=%2F")
