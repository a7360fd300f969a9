"""API_TOKEN (a staff token from before users existed), admin sessions and browsers' origins.
Users' tokens and who sees what: test_access.py."""

from __future__ import annotations

import pytest
from django.test import Client

from testing.uploads import payload

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-token-for-tests"
PROTECTED = [
    ("put", "/write?name=a"),
    ("get", "/read/0b5d3c26-0000-0000-0000-000000000000"),
    ("head", "/read/0b5d3c26-0000-0000-0000-000000000000"),
    ("get", "/files"),
    ("get", "/files/0b5d3c26-0000-0000-0000-000000000000"),
    ("delete", "/files/0b5d3c26-0000-0000-0000-000000000000"),
    ("get", "/openapi.json"),
    ("post", "/uploads/"),
    ("options", "/uploads/"),
    ("head", "/uploads/0b5d3c26-0000-0000-0000-000000000000"),
    ("patch", "/uploads/0b5d3c26-0000-0000-0000-000000000000"),
    ("delete", "/uploads/0b5d3c26-0000-0000-0000-000000000000"),
]
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def token(settings):
    settings.API_TOKEN, settings.API_OPEN = TOKEN, False
    return TOKEN


@pytest.mark.parametrize(("method", "url"), PROTECTED)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
def test_missing_or_wrong_token_is_401(client, token, method, url, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = getattr(client, method)(url, **headers, **TUS)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    if method not in ("head", "options"):
        assert response.json()["error"] == "unauthorized"


def test_right_token_is_let_through(client, token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}

    created = client.put(
        "/write?name=a", data=payload(10), content_type="x/y", CONTENT_LENGTH="10", **auth
    )
    file_id = created.json()["file_id"]

    assert created.status_code == 201
    assert client.get(f"/read/{file_id}", **auth).status_code == 200
    assert client.get("/files", **auth).json()["files"][0]["file_id"] == file_id
    assert client.get("/openapi.json", **auth).status_code == 200
    assert (
        client.delete(f"/files/{file_id}", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 204
    )


def test_health_endpoints_stay_open(client, token):
    assert client.get("/health").status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_readiness_details_only_with_credentials(client, token, settings):
    settings.DEBUG = False

    public = client.get("/health/ready").json()["checks"]
    private = client.get("/health/ready", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()["checks"]

    assert public == {name: {"ok": True} for name in ("database", "cache", "storage")}
    assert all(check["detail"] for check in private.values())


def test_a_session_writes_only_with_its_csrf_token(token, admin_user):
    """The admin's download links and the web app act with the signed-in user's rights; a write
    from a session must carry the CSRF token (else any site could post as the user)."""
    browser = Client(enforce_csrf_checks=True)
    file_id = browser.put(
        "/write?name=a",
        data=payload(10),
        content_type="x/y",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()["file_id"]
    browser.force_login(admin_user)

    assert browser.get(f"/read/{file_id}").status_code == 200
    refused = browser.put("/write?name=b", data=b"x", content_type="x/y")
    assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
    assert browser.delete(f"/files/{file_id}").status_code == 403
    browser.get("/")  # a page of the web app sets the CSRF cookie
    csrf = {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}
    written = browser.put("/write?name=b", data=b"x", content_type="x/y", **csrf)
    assert written.status_code == 201
    assert browser.delete(f"/files/{file_id}", **csrf).status_code == 204
    # A form-encoded body is never read to look for the token in it: it is the upload.
    form = browser.post("/write?name=c", data="a=b", content_type=FORM, **csrf)
    assert (form.status_code, form.json()["error"]) == (403, "csrf_failed")


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, 201),  # curl, an SDK: no Origin at all
        ("http://testserver", 201),  # our own pages
        ("http://app.example", 201),  # listed in CORS_ALLOWED_ORIGINS
        ("http://evil.example", 403),
        ("null", 403),  # a sandboxed frame or a file:// page
    ],
)
def test_writes_from_other_origins_pages_are_refused(client, settings, origin, status):
    settings.CORS_ALLOWED_ORIGINS = ["http://app.example"]
    headers = {"HTTP_ORIGIN": origin} if origin else {}

    response = client.post("/write?name=a", data=b"hello", content_type="text/plain", **headers)

    assert response.status_code == status
    if status == 403:
        assert response.json()["error"] == "cross_origin_refused"


def test_reads_from_other_origins_are_not_refused(client):
    assert client.get("/files", HTTP_ORIGIN="http://evil.example").status_code == 200


def test_an_open_api_answers_without_a_token_but_not_with_a_wrong_one(client, settings):
    settings.API_TOKEN, settings.API_OPEN = TOKEN, True

    assert client.get("/files").status_code == 200
    assert client.get("/files", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_a_resumable_upload_with_the_token(client, token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}", **TUS}

    created = client.post("/uploads/", HTTP_UPLOAD_LENGTH="5", **auth)
    path = created["Location"].removeprefix("http://testserver")
    patched = client.patch(
        path,
        b"hello",
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET="0",
        **auth,
    )

    assert (created.status_code, patched.status_code) == (201, 204)
    read = client.get(f"/read/{path.rsplit('/', 1)[1]}", **auth)
    assert b"".join(read.streaming_content) == b"hello"


# --- browsers on other origins (django-cors-headers) -------------------------------------------


def preflight(client, origin: str, method: str, headers: str):
    return client.options(
        "/uploads/",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def test_a_listed_origins_preflight_for_tus_is_allowed(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["http://app.example"]

    response = preflight(
        client, "http://app.example", "PATCH", "tus-resumable,upload-offset,content-type"
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "http://app.example"
    assert "PATCH" in response["Access-Control-Allow-Methods"]
    allowed = response["Access-Control-Allow-Headers"]
    assert {"tus-resumable", "upload-offset", "upload-metadata", "authorization"} <= set(
        allowed.split(", ")
    )


def test_an_unlisted_origins_preflight_gets_no_permission(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["http://app.example"]

    response = preflight(client, "http://evil.example", "PATCH", "tus-resumable")

    assert "Access-Control-Allow-Origin" not in response


def test_a_listed_origin_reads_the_tus_headers_and_an_unlisted_one_cannot_create(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["http://app.example"]

    allowed = client.post(
        "/uploads/", HTTP_UPLOAD_LENGTH="3", HTTP_ORIGIN="http://app.example", **TUS
    )
    refused = client.post(
        "/uploads/", HTTP_UPLOAD_LENGTH="3", HTTP_ORIGIN="http://evil.example", **TUS
    )

    assert allowed.status_code == 201
    exposed = allowed["Access-Control-Expose-Headers"].split(", ")
    assert {"location", "upload-offset", "upload-expires", "tus-resumable"} <= set(exposed)
    assert refused.status_code == 403
    assert refused.json()["error"] == "cross_origin_refused"
