"""Who /dav/ lets in: HTTP Basic with the user name and an API token (what WebDAV clients send),
or a Bearer token; a challenge that makes clients ask; failed logins throttled; each user in
their own tree; and no credential in any log line."""

from __future__ import annotations

import base64
import logging

import pytest
from django.core.cache import cache

from dav.tests.helpers import dav
from testing.uploads import WithToken
from testing.users import make_user

pytestmark = pytest.mark.django_db


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def closed(settings):
    settings.API_OPEN = False
    settings.AXES_FAILURE_LIMIT = 3
    cache.clear()


def test_no_credentials_get_a_basic_challenge(client, closed):
    reply = dav(client, "PROPFIND", "/", Depth="0")

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith('Basic realm="LabDropbox WebDAV"')


def test_options_answers_before_a_login(client, closed):
    assert dav(client, "OPTIONS", "/").status == 200  # Explorer asks before it logs in


def test_basic_with_the_user_name_and_a_token_and_bearer_both_work(client, closed):
    _, token = make_user("ada")

    as_basic = dav(client, "PUT", "/a.txt", b"a", Authorization=basic("ada", token))
    as_bearer = dav(client, "GET", "/a.txt", Authorization=f"Bearer {token}")
    any_case = dav(client, "GET", "/a.txt", Authorization=basic("ADA", token))

    assert (as_basic.status, as_bearer.status, any_case.status) == (201, 200, 200)
    assert as_bearer.body == b"a"


@pytest.mark.parametrize(
    "authorization",
    [
        "basic-of-bo",  # another user's name with ada's token
        "Basic !!!notbase64",
        basic("ada", ""),
        basic("ada", "ldb_wrong"),
        "Digest username=ada",
    ],
)
def test_wrong_credentials_are_401_with_the_challenge(client, closed, authorization):
    _, token = make_user("ada")
    make_user("bo")
    if authorization == "basic-of-bo":
        authorization = basic("bo", token)

    reply = dav(client, "PROPFIND", "/", Depth="0", Authorization=authorization)

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_repeated_failures_from_one_address_are_throttled(client, closed):
    _, token = make_user("ada")
    for _ in range(3):
        assert dav(client, "GET", "/", Authorization=basic("ada", "ldb_guess")).status == 401

    refused = dav(client, "GET", "/", Authorization=basic("ada", token))

    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    other = client.generic(
        "GET", "/dav/", HTTP_AUTHORIZATION=basic("ada", token), REMOTE_ADDR="10.9.8.7"
    )
    assert other.status_code == 200  # only the address that guessed waits


def test_a_success_starts_the_count_of_failures_again(client, closed):
    _, token = make_user("ada")
    for _ in range(2):
        dav(client, "GET", "/", Authorization=basic("ada", "ldb_guess"))
    assert dav(client, "GET", "/", Authorization=basic("ada", token)).status == 200

    for _ in range(2):
        assert dav(client, "GET", "/", Authorization=basic("ada", "ldb_guess")).status == 401
    assert dav(client, "GET", "/", Authorization=basic("ada", token)).status == 200


def test_each_user_sees_their_own_tree(client, closed):
    _, ada = make_user("ada")
    _, bo = make_user("bo")
    dav(WithToken(client, ada), "PUT", "/mine.txt", b"ada's")

    assert dav(WithToken(client, bo), "GET", "/mine.txt").status == 404
    assert dav(WithToken(client, bo), "PUT", "/mine.txt", b"bo's").status == 201
    assert dav(WithToken(client, ada), "GET", "/mine.txt").body == b"ada's"


def test_no_credential_reaches_a_log_line(client, closed, caplog):
    _, token = make_user("ada")
    caplog.set_level(logging.DEBUG)
    for authorization in (basic("ada", token), basic("ada", token + "x"), f"Bearer {token}"):
        for method in ("PROPFIND", "GET", "DELETE", "MOVE"):
            dav(client, method, "/nothing", Authorization=authorization)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    encoded = base64.b64encode(f"ada:{token}".encode()).decode()
    assert caplog.records  # the 4xx answers were logged
    assert token not in logged and encoded not in logged
