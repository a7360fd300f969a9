"""Who may do what: every endpoint and method × every kind of caller, on a closed API.

The table below is checked against what the URL conf serves, so a new endpoint (or a new method
of one) fails here until its expected statuses are written down.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import digest_of, revoke_token
from files import urls
from files.models import File
from labdropbox.tracing import route_template
from testing.uploads import TUS, WithToken, payload, send, tus_create, upload
from testing.users import make_user

pytestmark = pytest.mark.django_db

CALLERS = ("none", "malformed", "wrong", "expired", "revoked", "other", "owner", "staff")
REFUSED = ("none", "malformed", "wrong", "expired", "revoked")
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}

# (URL name, method) -> (path, headers, body, status for the owner and staff, for another user)
# Paths name the owner's file, upload and link; None for "another user" means the same status.
ENDPOINTS = {
    ("write", "PUT"): ("/write?name=a", {}, b"abc", 201, None),
    ("write", "POST"): ("/write?name=a", {}, b"abc", 201, None),
    ("read", "GET"): ("/read/{file}", {}, b"", 200, 404),
    ("read", "HEAD"): ("/read/{file}", {}, b"", 200, 404),
    ("files", "GET"): ("/files", {}, b"", 200, None),
    ("file", "GET"): ("/files/{file}", {}, b"", 200, 404),
    ("file", "DELETE"): ("/files/{file}", {}, b"", 204, 404),
    ("links", "GET"): ("/files/{file}/links", {}, b"", 200, 404),
    ("links", "POST"): ("/files/{file}/links", {}, b"{}", 201, 404),
    ("link", "DELETE"): ("/files/{file}/links/{link}", {}, b"", 204, 404),
    ("file-move", "POST"): ("/files/{file}/move", {}, b'{"path": "/moved.bin"}', 200, 404),
    ("file-copy", "POST"): ("/files/{file}/copy", {}, b'{"path": "/copied.bin"}', 201, 404),
    ("file-versions", "GET"): ("/files/{file}/versions", {}, b"", 200, 404),
    ("version-restore", "POST"): ("/files/{file}/versions/{file}/restore", {}, b"", 201, 404),
    ("folders", "POST"): ("/folders", {}, b'{"path": "/new"}', 201, None),
    ("folder", "GET"): ("/folders/{folder}", {}, b"", 200, 404),
    ("folder", "DELETE"): ("/folders/{folder}", {}, b"", 204, 404),
    ("folder-move", "POST"): ("/folders/{folder}/move", {}, b'{"path": "/elsewhere"}', 200, 404),
    ("trash", "GET"): ("/trash", {}, b"", 200, None),
    ("trash-restore", "POST"): ("/trash/{trash}/restore", {}, b"", 200, 404),
    ("trash-item", "DELETE"): ("/trash/{trash}", {}, b"", 204, 404),
    ("me", "GET"): ("/me", {}, b"", 200, None),
    ("uploads", "OPTIONS"): ("/uploads/", {}, b"", 204, None),
    ("uploads", "POST"): ("/uploads/", {**TUS, "Upload-Length": "3"}, b"", 201, None),
    ("upload", "OPTIONS"): ("/uploads/{upload}", {}, b"", 204, None),  # tells of the server
    ("upload", "HEAD"): ("/uploads/{upload}", TUS, b"", 200, 404),
    ("upload", "PATCH"): ("/uploads/{upload}", OCTETS, b"abc", 204, 404),
    ("upload", "DELETE"): ("/uploads/{upload}", TUS, b"", 204, 404),
    # POST stands in for another method only with X-HTTP-Method-Override.
    ("upload", "POST"): ("/uploads/{upload}", TUS, b"", 405, None),
    ("openapi", "GET"): ("/openapi.json", {}, b"", 200, None),
}
# Public: the same answer whoever asks, whatever Authorization says.
PUBLIC = {
    ("health", "GET"): ("/health", 200),
    ("health", "HEAD"): ("/health", 200),
    ("ready", "GET"): ("/health/ready", 200),
    ("ready", "HEAD"): ("/health/ready", 200),
    ("shared", "GET"): ("/s/{token}", 200),
    ("shared", "HEAD"): ("/s/{token}", 200),
}


def test_the_table_covers_every_endpoint_and_method(client):
    served = set()
    for pattern in urls.urlpatterns:
        route = "/" + route_template(str(pattern.pattern))
        # A method a view does not take gets a 405 that lists the ones it does.
        response = client.generic("TRACE", route.replace("{file_id}", str(uuid.uuid4())))
        assert response.status_code == 405, route
        methods = {method.strip() for method in response["Allow"].split(",")}
        served |= {(pattern.name, method) for method in methods}

    assert served == set(ENDPOINTS) | set(PUBLIC)


@pytest.fixture
def world(client, settings):
    """A closed API; the owner's file (with a share link) and upload; and every kind of caller."""
    settings.API_OPEN = False
    owner, owner_token = make_user("owner")
    _, other_token = make_user("other")
    _, staff_token = make_user("staff", staff=True)
    _, expired_token = make_user("expired")
    ApiToken.objects.filter(digest=digest_of(expired_token)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    _, revoked_token = make_user("revoked")
    revoke_token(ApiToken.objects.get(digest=digest_of(revoked_token)))
    as_owner = WithToken(client, owner_token)
    file_id = upload(as_owner, payload(10))["file_id"]
    link = send(as_owner, "POST", f"/files/{file_id}/links", b"{}").body
    folder = json.loads(send(as_owner, "POST", "/folders", b'{"path": "/box"}').body)
    trashed = upload(as_owner, payload(5), name="old.bin")["file_id"]
    send(as_owner, "DELETE", f"/files/{trashed}")
    (item,) = json.loads(send(as_owner, "GET", "/trash").body)["entries"]
    return {
        "ids": {
            "file": file_id,
            "folder": folder["folder_id"],
            "trash": item["trash_id"],
            "upload": tus_create(as_owner, 3).rsplit("/", 1)[1],
            "link": json.loads(link)["link_id"],
            "token": json.loads(link)["url"].rsplit("/", 1)[1],
        },
        "authorization": {
            "none": None,
            "malformed": "Basic b3duZXI6cGFzc3dvcmQ=",
            "wrong": "Bearer ldb_" + "x" * 43,
            "expired": f"Bearer {expired_token}",
            "revoked": f"Bearer {revoked_token}",
            "other": f"Bearer {other_token}",
            "owner": f"Bearer {owner_token}",
            "staff": f"Bearer {staff_token}",
        },
        "owner": owner,
    }


def ask(client, world, method: str, path: str, headers: dict, body: bytes, caller: str):
    headers = dict(headers)
    if world["authorization"][caller]:
        headers["Authorization"] = world["authorization"][caller]
    return send(client, method, path.format(**world["ids"]), body, headers)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_each_caller_gets_what_its_token_allows(client, world, endpoint, caller):
    path, headers, body, allowed, for_another = ENDPOINTS[endpoint]
    if caller in REFUSED:
        expected = 401
    elif caller == "other" and for_another is not None:
        expected = for_another
    else:
        expected = allowed

    reply = ask(client, world, endpoint[1], path, headers, body, caller)

    assert reply.status == expected, reply.body
    if expected == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", sorted(PUBLIC))
def test_public_endpoints_answer_everyone_alike(client, world, endpoint, caller):
    path, expected = PUBLIC[endpoint]

    reply = ask(client, world, endpoint[1], path, {}, b"", caller)

    assert reply.status == expected, reply.body


def test_another_users_file_is_not_even_listed(client, world):
    other = WithToken(client, world["authorization"]["other"].split()[1])
    staff = WithToken(client, world["authorization"]["staff"].split()[1])

    listed = json.loads(send(other, "GET", "/files").body)["files"]
    everyone = json.loads(send(staff, "GET", "/files").body)["files"]

    assert listed == []
    assert [file["file_id"] for file in everyone] == [world["ids"]["file"]]


def test_files_stored_while_open_are_staff_only_once_closed(client, settings, world):
    settings.API_OPEN = True
    file_id = upload(client, payload(5))["file_id"]  # no token: no one's
    settings.API_OPEN = False

    assert File.objects.get(pk=file_id).owner is None
    for caller, status in (("none", 401), ("owner", 404), ("staff", 200)):
        assert ask(client, world, "GET", f"/read/{file_id}", {}, b"", caller).status == status


def test_api_token_stays_a_staff_token(client, settings, world):
    settings.API_TOKEN = "the-old-shared-token"
    old = WithToken(client, "the-old-shared-token")

    assert send(old, "GET", f"/read/{world['ids']['file']}").status == 200
    assert json.loads(send(old, "GET", "/me").body)["is_staff"] is True


def test_a_deactivated_users_token_stops_working_at_once(client, world):
    owner = world["owner"]
    assert ask(client, world, "GET", "/me", {}, b"", "owner").status == 200

    owner.is_active = False
    owner.save()

    assert ask(client, world, "GET", "/me", {}, b"", "owner").status == 401


def test_another_users_cached_file_costs_what_a_missing_one_does(client, world):
    """A 404 for a file that exists (cached, someone else's) makes the database queries a
    file that does not exist makes: the time of the answer does not tell them apart."""
    other = WithToken(client, world["authorization"]["other"].split()[1])
    owner = WithToken(client, world["authorization"]["owner"].split()[1])
    file_id = world["ids"]["file"]
    assert send(owner, "GET", f"/read/{file_id}").status == 200  # cached now
    assert send(other, "GET", "/me").status == 200  # the token's check is cached too

    with CaptureQueriesContext(connection) as hidden:
        assert send(other, "GET", f"/read/{file_id}").status == 404
    with CaptureQueriesContext(connection) as missing:
        assert send(other, "GET", f"/read/{uuid.uuid4()}").status == 404

    lookups = [q["sql"] for q in hidden.captured_queries if "files_entry" in q["sql"]]
    assert len(lookups) >= 1
    assert len(hidden.captured_queries) == len(missing.captured_queries)
