"""API tokens: made by `create_token` or in the admin, stored hashed, expired, revoked, and
checked without a query while cached."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import CACHE_VERSION, cache_key, digest_of, revoke_token, token_entry
from testing.uploads import WithToken, send
from testing.users import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def closed_api(settings):
    settings.API_OPEN = False


def create_token(*args: str) -> str:
    out = io.StringIO()
    call_command("create_token", *args, stdout=out)
    return out.getvalue().strip()


def test_create_token_prints_a_token_that_works_and_stores_only_its_hash(client):
    get_user_model().objects.create_user("ann")

    token = create_token("ann", "--name", "laptop", "--expires-days", "30")

    stored = ApiToken.objects.get()
    assert token.startswith("ldb_") and len(token) > 40
    assert stored.digest == digest_of(token) and token not in (stored.digest, stored.prefix)
    assert (stored.name, stored.prefix) == ("laptop", token[:12])
    assert timedelta(days=29) < stored.expires_at - timezone.now() <= timedelta(days=30)
    assert json.loads(send(WithToken(client, token), "GET", "/me").body)["username"] == "ann"


def test_create_token_refuses_an_unknown_user_unless_told_to_create_it():
    with pytest.raises(CommandError, match="no user 'zed'"):
        create_token("zed")

    create_token("zed", "--create-user")

    assert get_user_model().objects.get(username="zed").has_usable_password() is False


@pytest.mark.parametrize("days", ["0", "-1", "99999"])
def test_create_token_refuses_a_nonsense_expiry(days):
    get_user_model().objects.create_user("ann")

    with pytest.raises(CommandError, match="--expires-days"):
        create_token("ann", "--expires-days", days)


def test_an_expired_token_is_401(client):
    _, token = make_user("ann")
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    first, cached = (send(WithToken(client, token), "GET", "/me") for _ in range(2))

    assert (first.status, cached.status) == (401, 401)
    assert "expired" in json.loads(cached.body)["detail"]


def test_a_token_given_an_expiry_in_the_past_stops_at_once(client):
    _, token = make_user("ann")
    as_ann = WithToken(client, token)
    assert send(as_ann, "GET", "/me").status == 200  # cached now
    stored = ApiToken.objects.get()

    stored.expires_at = timezone.now() - timedelta(seconds=1)
    stored.save()  # as the admin does: the cached entry goes

    assert send(as_ann, "GET", "/me").status == 401


def test_a_cached_token_costs_no_query(client):
    _, token = make_user("ann")
    as_ann = WithToken(client, token)
    send(as_ann, "GET", "/files")  # the first check reads the token and notes its use

    with CaptureQueriesContext(connection) as queries:
        send(as_ann, "GET", "/openapi.json")

    assert len(queries) == 0


def test_last_used_is_recorded(client):
    _, token = make_user("ann")

    send(WithToken(client, token), "GET", "/me")

    assert ApiToken.objects.get().last_used_at is not None


# --- the admin ----------------------------------------------------------------------------------


def test_the_admin_makes_a_token_and_shows_it_once(admin_client, client):
    ann = get_user_model().objects.create_user("ann")

    response = admin_client.post(
        "/admin/accounts/apitoken/add/", {"user": ann.pk, "name": "ci"}, follow=True
    )

    shown = [str(m) for m in response.context["messages"]]
    token = next(word for m in shown for word in m.split() if word.startswith("ldb_"))
    assert send(WithToken(client, token), "GET", "/me").status == 200
    listing = admin_client.get("/admin/accounts/apitoken/").content.decode()
    assert token[:12] in listing and token not in listing


def test_revoking_in_the_admin_stops_the_token_at_once(admin_client, client):
    _, token = make_user("ann")
    as_ann = WithToken(client, token)
    assert send(as_ann, "GET", "/me").status == 200  # cached now
    token_id = ApiToken.objects.get().pk

    admin_client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token_id]},
    )

    assert ApiToken.objects.get().revoked_at is not None
    assert send(as_ann, "GET", "/me").status == 401


def test_the_user_list_shows_usage_and_quota_and_the_quota_is_editable(admin_client, client):
    user, token = make_user("ann", quota_bytes=5000)
    send(WithToken(client, token), "PUT", "/write?name=a", b"x" * 1234)

    listing = admin_client.get("/admin/auth/user/").content.decode()
    page = admin_client.get(f"/admin/auth/user/{user.pk}/change/").content.decode()

    assert "1.2\xa0KB" in listing and "4.9\xa0KB" in listing
    assert 'name="quota-0-limit_bytes"' in page


def test_a_request_that_read_the_token_before_its_revocation_cannot_cache_it_again(client):
    _, token = make_user("ann")
    as_ann = WithToken(client, token)
    stored = ApiToken.objects.get()
    stale = token_entry(stored.digest)  # read just before the revocation commits

    revoke_token(stored)
    put_back = cache.add(cache_key(stored.digest), stale, 30, version=CACHE_VERSION)

    assert put_back is False
    assert send(as_ann, "GET", "/me").status == 401
