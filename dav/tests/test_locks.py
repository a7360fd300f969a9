"""Locks (WebDAV class 2): what they refuse without their token, what they let through with it,
and how they end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dav.models import Lock
from dav.tests.helpers import (
    LOCK_EXCLUSIVE,
    LOCK_SHARED,
    D,
    dav,
    lock,
    prop_request,
    responses,
    url,
)

pytestmark = pytest.mark.django_db

SET_PROPERTY = (
    b'<?xml version="1.0"?><propertyupdate xmlns="DAV:"><set><prop>'
    b'<color xmlns="urn:z">red</color></prop></set></propertyupdate>'
)


def test_a_locked_file_refuses_changes_without_its_token(client):
    dav(client, "PUT", "/l.txt", b"one")
    token = lock(client, "/l.txt")

    assert dav(client, "PUT", "/l.txt", b"two").status == 423
    assert dav(client, "DELETE", "/l.txt").status == 423
    assert dav(client, "MOVE", "/l.txt", Destination=url("/m.txt")).status == 423
    assert dav(client, "PROPPATCH", "/l.txt", SET_PROPERTY).status == 423
    assert dav(client, "LOCK", "/l.txt", LOCK_EXCLUSIVE).status == 423
    assert dav(client, "GET", "/l.txt").body == b"one"  # reading is never locked
    assert dav(client, "COPY", "/l.txt", Destination=url("/c.txt")).status == 201

    assert dav(client, "PUT", "/l.txt", b"two", If=f"(<{token}>)").status == 204
    assert dav(client, "GET", "/l.txt").body == b"two"


def test_an_if_header_that_does_not_hold_is_412_and_a_wrong_token_423(client):
    dav(client, "PUT", "/c.txt", b"c")
    token = lock(client, "/c.txt")
    etag = dav(client, "HEAD", "/c.txt").headers["ETag"]

    assert dav(client, "PUT", "/c.txt", b"x", If=f'(<{token}> ["nope"])').status == 412
    assert dav(client, "PUT", "/c.txt", b"x", If=f"(<{token}x>) (Not <DAV:no-lock>)").status == 423
    assert dav(client, "PUT", "/c.txt", b"x", If=f"(<{token}> [{etag}])").status == 204
    assert dav(client, "PUT", "/c.txt", b"y", If="(<DAV:no-lock>").status == 400  # malformed


def test_unlock_ends_the_lock_and_a_stale_token_no_longer_holds(client):
    dav(client, "PUT", "/u.txt", b"u")
    token = lock(client, "/u.txt")

    assert dav(client, "UNLOCK", "/u.txt", Lock_Token=f"<{token}>").status == 204
    assert dav(client, "UNLOCK", "/u.txt", Lock_Token=f"<{token}>").status == 409
    assert dav(client, "PUT", "/u.txt", b"v", If=f"(<{token}>)").status == 412
    assert dav(client, "PUT", "/u.txt", b"v").status == 204


def test_a_folder_locked_at_depth_infinity_guards_what_is_in_it(client):
    dav(client, "MKCOL", "/box")
    dav(client, "PUT", "/box/in.txt", b"in")
    token = lock(client, "/box", Depth="infinity")

    assert dav(client, "PUT", "/box/new.txt", b"n").status == 423
    assert dav(client, "DELETE", "/box/in.txt").status == 423
    assert dav(client, "MOVE", "/box/in.txt", Destination=url("/out.txt")).status == 423
    tagged = f"<http://testserver{url('/box')}> (<{token}>)"
    assert dav(client, "PUT", "/box/new.txt", b"n", If=tagged).status == 201
    refreshed = dav(client, "LOCK", "/box/in.txt", If=tagged, Timeout="Second-60")
    assert refreshed.status == 200  # a refresh through a path the lock covers
    assert Lock.objects.get(token=token).timeout_seconds == 60


def test_a_locked_member_keeps_its_folder_from_being_deleted_or_moved(client):
    dav(client, "MKCOL", "/keep")
    dav(client, "PUT", "/keep/a.txt", b"a")
    token = lock(client, "/keep/a.txt")

    assert dav(client, "DELETE", "/keep").status == 423
    assert dav(client, "MOVE", "/keep", Destination=url("/moved")).status == 423
    assert dav(client, "DELETE", "/keep", If=f"</dav/keep/a.txt> (<{token}>)").status == 204
    assert not Lock.objects.exists()  # a deleted path's locks go with it


def test_shared_locks_stand_together_and_an_exclusive_one_does_not(client):
    dav(client, "PUT", "/s.txt", b"s")
    first = lock(client, "/s.txt", LOCK_SHARED)
    second = lock(client, "/s.txt", LOCK_SHARED)

    assert first != second
    assert dav(client, "LOCK", "/s.txt", LOCK_EXCLUSIVE).status == 423
    assert dav(client, "PUT", "/s.txt", b"t", If=f"(<{second}>)").status == 204


def test_locking_a_name_with_nothing_there_makes_an_empty_file(client):
    reply = dav(client, "LOCK", "/new.txt", LOCK_EXCLUSIVE)

    assert reply.status == 201
    assert dav(client, "GET", "/new.txt").body == b""
    assert dav(client, "LOCK", "/nowhere/new.txt", LOCK_EXCLUSIVE).status == 409


def test_lockdiscovery_shows_the_lock_as_it_was_taken(client):
    dav(client, "PUT", "/d.txt", b"d")
    token = lock(client, "/d.txt", Timeout="Second-120")

    found = responses(dav(client, "PROPFIND", "/d.txt", prop_request("lockdiscovery"), Depth="0"))
    (active,) = found["/dav/d.txt"][f"{D}lockdiscovery"][1]

    assert active.findtext(f"{D}locktoken/{D}href") == token
    assert active.find(f"{D}lockscope/{D}exclusive") is not None
    assert active.findtext(f"{D}owner/{D}href") == "mailto:ada@example.org"
    assert int(active.findtext(f"{D}timeout", "").removeprefix("Second-")) <= 120


def test_an_expired_lock_holds_nothing(client):
    dav(client, "PUT", "/e.txt", b"e")
    token = lock(client, "/e.txt")
    Lock.objects.filter(token=token).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert dav(client, "PUT", "/e.txt", b"f").status == 204
    assert dav(client, "LOCK", "/e.txt", LOCK_EXCLUSIVE).status == 200


def test_infinite_timeouts_are_held_to_a_day(client):
    dav(client, "PUT", "/t.txt", b"t")
    token = lock(client, "/t.txt", Timeout="Infinite, Second-4100000000")

    assert Lock.objects.get(token=token).timeout_seconds == 24 * 3600


@pytest.mark.parametrize(
    "body",
    [
        b"<lockinfo xmlns='DAV:'><locktype><write/></locktype></lockinfo>",  # no scope
        b"<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope>"
        b"<locktype><read/></locktype></lockinfo>",
        b"<notlockinfo xmlns='DAV:'/>",
    ],
)
def test_a_lock_request_that_makes_no_sense_is_a_bad_request(client, body):
    dav(client, "PUT", "/b.txt", b"b")

    assert dav(client, "LOCK", "/b.txt", body).status == 400


def test_a_tree_holds_a_bounded_number_of_locks(client, monkeypatch):
    monkeypatch.setattr("dav.locks.MAX_LOCKS_PER_TREE", 2)
    for name in ("a", "b", "c"):
        dav(client, "PUT", f"/{name}.txt", b"x")
    lock(client, "/a.txt")
    lock(client, "/b.txt")

    refused = dav(client, "LOCK", "/c.txt", LOCK_EXCLUSIVE)

    assert refused.status == 429
    assert Lock.objects.count() == 2


def test_an_if_header_naming_one_resource_many_times_looks_at_it_once(
    client, django_assert_max_num_queries
):
    dav(client, "PUT", "/many.txt", b"m")
    token = lock(client, "/many.txt")
    tagged = " ".join(f'</dav/many.txt> (<{token}> ["nope{n}"])' for n in range(200))

    with django_assert_max_num_queries(60):
        reply = dav(client, "PUT", "/many.txt", b"n", If=tagged + f" (<{token}>)")

    assert reply.status == 204


def test_a_lock_on_a_new_name_needs_its_locked_folders_token(client):
    dav(client, "MKCOL", "/f")
    token = lock(client, "/f", Depth="0")

    assert dav(client, "LOCK", "/f/new.txt", LOCK_EXCLUSIVE).status == 423
    assert dav(client, "GET", "/f/new.txt").status == 404
    tagged = f"</dav/f> (<{token}>)"
    assert dav(client, "LOCK", "/f/new.txt", LOCK_EXCLUSIVE, If=tagged).status == 201


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (
            b"<lockinfo xmlns='DAV:'><lockscope><bogus/></lockscope>"
            b"<locktype><write/></locktype></lockinfo>",
            {},
        ),
        (
            b"<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope><locktype><write/>"
            b"</locktype><owner>" + b"o" * 2000 + b"</owner></lockinfo>",
            {},
        ),
        (LOCK_EXCLUSIVE, {"Timeout": "Second-\u00b2"}),
        (LOCK_EXCLUSIVE, {"Timeout": "Second-" + "9" * 5000}),
    ],
)
def test_a_lock_with_an_unknown_scope_or_a_huge_owner_is_refused_and_odd_timeouts_ignored(
    client, body, headers
):
    dav(client, "PUT", "/o.txt", b"o")

    reply = dav(client, "LOCK", "/o.txt", body, **headers)

    if "Timeout" in headers:  # not a number this server reads: the default
        assert reply.status == 200
        assert Lock.objects.get().timeout_seconds == 3600
    else:
        assert reply.status == 400
