"""The web app's pages as a browser gets them, through Django's test client: who may see them,
what they list, how they fail, and what every page promises its browser (CSP, CSRF)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.template.defaultfilters import filesizeformat
from django.test import Client

from files.models import ShareLink
from testing.uploads import payload
from testing.users import make_user

pytestmark = pytest.mark.django_db

WEB = Path(__file__).resolve().parent.parent
HTML = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what browsers send
# The web app's scripts send the session's CSRF token with every write; Django's test client does
# not check its value (enforce_csrf_checks is off: test_auth does), but the API wants it there.
CSRF = {"HTTP_X_CSRFTOKEN": "not checked here"}


class Rows(HTMLParser):
    """The listing's rows, in order: (kind, name)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and "data-kind" in found:
            self.rows.append((str(found["data-kind"]), str(found["data-name"])))


def rows(html: bytes) -> list[tuple[str, str]]:
    parser = Rows()
    parser.feed(html.decode())
    return parser.rows


@pytest.fixture
def member(client):
    user, _ = make_user("ada")
    user.set_password("correct horse battery")
    user.save()
    client.force_login(user)
    client.defaults.update(CSRF)
    return user


def put(client, path: str, data: bytes) -> str:
    response = client.put(f"/write?path={path}", data=data, content_type="x/y")
    assert response.status_code in (200, 201), response.content
    return response.json()["file_id"]


def test_signed_out_visitors_are_sent_to_the_sign_in_page(client):
    response = client.get("/?path=/a")

    assert response.status_code == 302
    assert response["Location"] == "/app/sign-in?next=/%3Fpath%3D/a"
    page = client.get("/app/sign-in")
    assert page.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in page.content
    assert "script-src 'self'" in page["Content-Security-Policy"]


def test_signing_in_out_and_changing_the_password(settings):
    settings.AXES_FAILURE_LIMIT = 2
    user, _ = make_user("grace")
    user.set_password("first password 1")
    user.save()
    browser = Client()

    signed_in = browser.post(
        "/app/sign-in", {"username": "grace", "password": "first password 1", "next": "/"}
    )
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/")
    assert b"grace" in browser.get("/").content
    changed = browser.post(
        "/app/password",
        {
            "old_password": "first password 1",
            "new_password1": "second Password 2",
            "new_password2": "second Password 2",
        },
    )
    assert changed["Location"] == "/app/password/changed"
    assert browser.get("/").status_code == 200  # still signed in
    assert browser.post("/app/sign-out").status_code == 302
    assert browser.get("/").status_code == 302
    wrong = [
        browser.post("/app/sign-in", {"username": "grace", "password": "first password 1"})
        for _ in range(3)
    ]
    assert [answer.status_code for answer in wrong] == [200, 429, 429]  # the admin's throttling
    assert get_user_model().objects.get(username="grace").check_password("second Password 2")


def test_the_tree_lists_folders_first_sorts_and_pages(client, member, monkeypatch):
    monkeypatch.setattr("web.views.browse.PAGE_SIZE", 3)
    put(client, "/p/b.txt", payload(300))
    put(client, "/p/a.txt", payload(100))
    put(client, "/p/c.txt", payload(200))
    client.post("/folders", {"path": "/p/zeta"}, content_type="application/json")

    first = client.get("/?path=/p")
    by_size = client.get("/?path=/p&sort=size&order=desc")

    assert rows(first.content) == [("folder", "zeta"), ("file", "a.txt"), ("file", "b.txt")]
    following = re.search(rb'href="(\?[^"]*cursor=[^"]*)" rel="next"', first.content)
    assert following is not None
    second = client.get("/" + following.group(1).decode().replace("&amp;", "&"))
    assert rows(second.content) == [("file", "c.txt")]
    assert rows(by_size.content) == [("folder", "zeta"), ("file", "b.txt"), ("file", "c.txt")]
    assert b'aria-sort="descending"' in by_size.content
    assert b'href="/?path=%2Fp"' in first.content  # the breadcrumb


def test_a_member_sees_only_their_own_tree(client, member):
    other = Client(**CSRF)
    other.force_login(make_user("bob")[0])
    secret = put(other, "/secret/plans.txt", b"plans")

    assert client.get("/?path=/secret").status_code == 404
    assert client.get(f"/app/files/{secret}").status_code == 404
    assert b"plans.txt" not in client.get("/").content
    assert other.get("/?path=/secret").status_code == 200


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/?sort=colour", 400),
        ("/?path=relative", 400),
        ("/?path=/a.txt", 409),
        ("/?cursor=nonsense", 400),
        ("/app/files/not-an-id", 404),
        ("/app/folders/0b5d3c26-0000-0000-0000-000000000000", 404),
        ("/app/trash?page=0", 400),
    ],
)
def test_bad_addresses_are_pages_with_the_reason_not_500s(client, member, url, status):
    put(client, "/a.txt", b"x")

    response = client.get(url)

    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert b"error-detail" in response.content


def test_a_file_page_shows_versions_and_links(client, member):
    file_id = put(client, "/report.txt", b"first")
    put(client, "/report.txt", b"second draft")
    client.post(f"/files/{file_id}/links", {"max_downloads": 3}, content_type="application/json")

    page = client.get(f"/app/files/{file_id}").content.decode()

    assert page.count("data-version-id=") == 2
    assert page.count("/restore") == 1  # the earlier version only
    assert "0 of 3" in page and ">live<" in page
    assert "/s/" + ShareLink.objects.get().prefix in page


def test_the_trash_page_lists_what_was_deleted(client, member):
    file_id = put(client, "/old/notes.txt", b"notes")
    client.delete(f"/files/{file_id}")

    page = client.get("/app/trash").content.decode()

    assert "notes.txt" in page and "/old/notes.txt" in page
    assert "/restore" in page


def test_the_quota_bar_shows_use_against_the_quota(client):
    user, _ = make_user("q", quota_bytes=10 * 1024 * 1024)
    client.force_login(user)
    client.defaults.update(CSRF)
    put(client, "/big.bin", payload(1024 * 1024))

    page = client.get("/").content.decode()

    assert 'max="10485760" value="1048576"' in page
    assert "1.0\xa0MB of 10.0\xa0MB used" in page


def share(client, file_id: str, **options: int) -> str:
    made = client.post(f"/files/{file_id}/links", options, content_type="application/json")
    return made.json()["url"].removeprefix("http://testserver")


def test_a_share_link_is_a_page_for_browsers_and_bytes_for_programs(client, member):
    data = payload(5000)
    link = share(client, put(client, "/shared/data.bin", data), max_downloads=1)
    stranger = Client()

    page = stranger.get(link, **HTML)
    assert page.status_code == 200
    assert b"data.bin" in page.content and filesizeformat(5000).encode() in page.content
    assert b'href="?download=1"' in page.content
    assert "Accept" in page["Vary"] and page["Cache-Control"] == "no-store"
    assert ShareLink.objects.get().downloads == 0  # a look is not a download
    curl = stranger.get(link, HTTP_ACCEPT="*/*")
    assert b"".join(curl.streaming_content) == data
    assert "Accept" in curl["Vary"]
    assert stranger.get(link + "?download=1", **HTML).status_code == 404  # its one download used
    gone = stranger.get(link, **HTML)
    assert gone.status_code == 404 and b"Link not found" in gone.content


def test_a_browser_can_download_through_the_page(client, member):
    data = payload(3000)
    link = share(client, put(client, "/d.bin", data))

    response = Client().get(link + "?download=1", **HTML)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        ("text/html", True),
        ("text/html;q=0.9, */*", True),
        ("TEXT/HTML", True),
        ("text/html;q=0", False),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("text/*", False),
    ],
)
def test_which_accept_headers_ask_for_the_page(accept, page):
    from labdropbox.pages import prefers_html

    assert prefers_html(accept) is page


def test_every_page_carries_the_policy_and_no_inline_script(client, member):
    file_id = put(client, "/x/y.txt", b"y")
    folder_id = client.get("/files?path=/").json()["entries"][0]["folder_id"]

    for url in [
        "/",
        "/?path=/x",
        f"/app/files/{file_id}",
        f"/app/folders/{folder_id}",
        "/app/trash",
        "/app/password",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "default-src 'self'" in response["Content-Security-Policy"], url
        assert response["X-Frame-Options"] == "DENY", url
    templates = [
        *(WEB / "templates").rglob("*.html"),
        WEB.parent / "files/templates/files/shared.html",
    ]
    for template in templates:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert not re.search(r"\son[a-z]+=|\sstyle=", text), template


def test_the_vendored_tus_client_is_the_version_the_node_tests_lock():
    locked = json.loads((WEB.parent / "testing/tus-js/package.json").read_text())
    version = locked["dependencies"]["tus-js-client"]
    vendored = WEB / f"static/web/vendor/tus-js-client-{version}"

    assert (vendored / "tus.min.js").stat().st_size > 10_000
    assert "MIT License" in (vendored / "LICENSE").read_text()
    assert f"tus-js-client-{version}/tus.min.js" in (WEB / "templates/web/browse.html").read_text()


def test_a_page_whose_session_ended_is_refused_not_taken_for_no_one(client, settings):
    """An open API's anonymous caller writes to the shared tree; a page's script (it sends
    X-CSRFToken) after its member signed out must not."""
    settings.API_OPEN = True

    refused = client.put("/write?path=/a.txt", data=b"x", content_type="x/y", **CSRF)

    assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")
    assert client.put("/write?path=/a.txt", data=b"x", content_type="x/y").status_code == 201


def test_a_link_whose_downloads_all_began_is_shown_used_up(client, member):
    file_id = put(client, "/once.txt", b"once")
    link = share(client, file_id, max_downloads=1)
    b"".join(Client().get(link).streaming_content)

    page = client.get(f"/app/files/{file_id}").content.decode()

    assert ">used up<" in page and ">live<" not in page
    button = Client().get(link + "?download=1", **HTML)  # the page's button, too late
    assert button.status_code == 404 and b"Link not found" in button.content


def test_a_file_pages_breadcrumbs_lead_to_its_folders(client, member):
    file_id = put(client, "/a/b/c.txt", b"c")

    page = client.get(f"/app/files/{file_id}").content.decode()

    assert 'href="/?path=%2Fa%2Fb"' in page
    assert "?path=%2Fa%2Fb%2Fc.txt" not in page


def test_signing_in_again_with_next_at_the_sign_in_page_goes_home(client, member):
    response = client.get("/app/sign-in?next=/app/sign-in")

    assert (response.status_code, response["Location"]) == (302, "/")


def test_signing_out_of_the_admin_keeps_the_admins_page(client, admin_user):
    client.force_login(admin_user)

    response = client.post("/admin/logout/")

    assert response.status_code == 200 and b"Logged out" in response.content
    assert client.post("/app/sign-out")["Location"] == "/app/sign-in"
