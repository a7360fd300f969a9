"""Hard quotas: space is reserved before bytes are stored, so no upload — nor any number of
them at once — stores more than its user's quota; what is refused leaves nothing behind."""

from __future__ import annotations

import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Quota, Reservation
from files.models import File, Upload
from files.operations.write import write_file
from files.quotas import Space
from labdropbox.api.callers import Caller
from labdropbox.api.errors import QuotaExceeded
from testing.fixtures import TEST_CHUNK_SIZE as C
from testing.fixtures import stored_keys
from testing.mysql import recreate_mysql_database
from testing.servers import GunicornServer
from testing.uploads import TUS, WithToken, payload, send, tus_create, tus_offset, tus_patch, upload
from testing.users import make_user

pytestmark = pytest.mark.django_db
QUOTA = 10 * C


@pytest.fixture
def bob(client, settings):
    settings.API_OPEN = False
    user, token = make_user("bob", quota_bytes=QUOTA)
    return user, WithToken(client, token)


def me(target) -> dict:
    return json.loads(send(target, "GET", "/me").body)


def test_uploads_that_fit_are_stored_and_me_counts_them(bob):
    _, as_bob = bob

    upload(as_bob, payload(4 * C))
    upload(as_bob, payload(6 * C))  # exactly the quota now

    assert me(as_bob) == {
        "username": "bob",
        "is_staff": False,
        "used_bytes": QUOTA,
        "stored_bytes": QUOTA,
        "current_bytes": QUOTA,
        "versions_bytes": 0,
        "trash_bytes": 0,
        "reserved_bytes": 0,
        "quota_bytes": QUOTA,
    }


def test_an_upload_over_the_quota_is_507_before_its_body_is_read(bob, store):
    _, as_bob = bob
    upload(as_bob, payload(6 * C))

    reply = send(as_bob, "PUT", "/write?name=big", payload(5 * C))

    assert reply.status == 507
    assert json.loads(reply.body)["error"] == "quota_exceeded"
    assert File.objects.count() == 1
    assert len(stored_keys(store)) == 6
    assert not Reservation.objects.exists()


def test_a_body_of_unknown_length_is_refused_at_the_chunk_that_overflows(bob, store):
    user, _ = bob
    caller = Caller(user.pk, "bob", False)
    body = io.BytesIO(payload(12 * C))  # read to its end, like a chunked request

    with pytest.raises(QuotaExceeded):
        write_file(["chunked.bin"], body, None, caller)

    assert body.tell() <= 11 * C  # refused as it went over, not after reading it all
    assert stored_keys(store) == []
    assert not File.objects.exists()
    assert not Reservation.objects.exists()


def test_the_trash_counts_until_purged_and_a_purge_frees_space_at_once(bob):
    _, as_bob = bob
    file_id = upload(as_bob, payload(8 * C))["file_id"]
    assert send(as_bob, "PUT", "/write?name=b", payload(4 * C)).status == 507

    send(as_bob, "DELETE", f"/files/{file_id}")
    assert send(as_bob, "PUT", "/write?name=b", payload(4 * C)).status == 507
    assert me(as_bob)["trash_bytes"] == 8 * C
    (trashed,) = json.loads(send(as_bob, "GET", "/trash").body)["entries"]
    send(as_bob, "DELETE", f"/trash/{trashed['trash_id']}")

    assert send(as_bob, "PUT", "/write?name=b", payload(4 * C)).status == 201


def test_a_resumable_upload_holds_its_length_until_it_ends(bob):
    _, as_bob = bob
    path = tus_create(as_bob, 7 * C)

    held = me(as_bob)
    refused = send(as_bob, "PUT", "/write?name=w", payload(4 * C))
    assert tus_patch(as_bob, path, payload(7 * C), 0).status == 204
    done = me(as_bob)

    assert (held["reserved_bytes"], held["used_bytes"]) == (7 * C, 7 * C)
    assert refused.status == 507
    assert (done["reserved_bytes"], done["stored_bytes"]) == (0, 7 * C)


def test_a_resumable_upload_longer_than_the_quota_is_refused_and_not_made(bob):
    _, as_bob = bob

    reply = send(as_bob, "POST", "/uploads/", b"", {**TUS, "Upload-Length": str(QUOTA + 1)})

    assert reply.status == 507
    assert not Upload.objects.exists()


def test_a_deferred_length_upload_is_covered_as_its_bytes_arrive(bob):
    _, as_bob = bob
    path = tus_create(as_bob, None)
    assert tus_patch(as_bob, path, payload(6 * C), 0).status == 204

    over = tus_patch(as_bob, path, payload(6 * C, seed=1), 6 * C)

    assert over.status == 507
    # What fitted is kept (whole chunks up to the quota): the client may resume once it has room.
    assert 6 * C <= tus_offset(as_bob, path) <= QUOTA
    assert me(as_bob)["used_bytes"] <= QUOTA


def test_terminating_an_upload_releases_its_space(bob):
    _, as_bob = bob
    path = tus_create(as_bob, 9 * C)

    assert send(as_bob, "DELETE", path, b"", TUS).status == 204

    assert me(as_bob)["reserved_bytes"] == 0
    assert send(as_bob, "PUT", "/write?name=w", payload(9 * C)).status == 201


def test_a_concatenation_turns_its_parts_space_into_the_files(bob):
    _, as_bob = bob
    parts = []
    for seed in range(2):
        path = tus_create(as_bob, 3 * C, concat="partial")
        assert tus_patch(as_bob, path, payload(3 * C, seed=seed), 0).status == 204
        parts.append(path)

    tus_create(as_bob, None, concat="final;" + " ".join(parts))

    assert me(as_bob)["stored_bytes"] == 6 * C
    assert me(as_bob)["reserved_bytes"] == 0
    assert not Reservation.objects.exists()


def test_a_dead_writes_reservation_stops_counting_when_it_expires(bob):
    user, as_bob = bob
    Reservation.objects.create(
        user=user, bytes=QUOTA, expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert me(as_bob)["reserved_bytes"] == 0
    assert send(as_bob, "PUT", "/write?name=w", payload(C)).status == 201


def test_the_default_quota_applies_to_users_without_their_own(client, settings):
    settings.API_OPEN, settings.DEFAULT_QUOTA_MB = False, 1
    _, token = make_user("carol")
    as_carol = WithToken(client, token)

    assert me(as_carol)["quota_bytes"] == 1024 * 1024
    assert send(as_carol, "PUT", "/write?name=w", payload(1024 * 1024 + 1)).status == 507


def test_an_unlimited_user_ignores_the_default(client, settings):
    settings.API_OPEN, settings.DEFAULT_QUOTA_MB = False, 1
    user, token = make_user("dan")
    Quota.objects.create(user=user, unlimited=True)
    as_dan = WithToken(client, token)

    assert me(as_dan)["quota_bytes"] is None
    assert send(as_dan, "PUT", "/write?name=w", payload(1024 * 1024 + 1)).status == 201


# --- many uploads at once, through gunicorn on the full stack -----------------------------------

UPLOADS, UPLOAD_SIZE, STACK_QUOTA = 64, 300 * 1024, 1024 * 1024  # three fit, a fourth does not


@pytest.mark.stack
def test_64_concurrent_uploads_never_overshoot_the_quota(s3_server, tmp_path):
    env = {
        **s3_server.service_env,
        "MINIO_BUCKET": "quotas",
        "CHUNK_SIZE_BYTES": str(64 * 1024),
        "API_OPEN": "false",
        "DEFAULT_QUOTA_MB": str(STACK_QUOTA // (1024 * 1024)),
        "TIDB_DATABASE": recreate_mysql_database(os.environ, "quotas"),
        "WEB_CONCURRENCY": "3",
    }
    server = GunicornServer(tmp_path, **env)
    try:
        token = server.manage("create_token", "eve", "--create-user").stdout.strip()
        statuses = upload_all_at_once(WithToken(server, token))
        committed = server.sql("SELECT SUM(size), SUM(chunk_count) FROM files_blob")[0]
        usage = json.loads(send(WithToken(server, token), "GET", "/me").body)
        objects = list(server.store.list())
    finally:
        server.stop()

    assert set(statuses) <= {201, 507}
    accepted = statuses.count(201)
    # At most three fit. Fewer may: chunked uploads hold space chunk by chunk until refused.
    assert accepted <= STACK_QUOTA // UPLOAD_SIZE
    assert int(committed[0] or 0) == accepted * UPLOAD_SIZE <= STACK_QUOTA
    # Every refused upload left nothing: each stored object is a committed file's chunk.
    assert len(objects) == int(committed[1] or 0)
    assert (usage["stored_bytes"], usage["reserved_bytes"]) == (int(committed[0] or 0), 0)


def upload_all_at_once(target) -> list[int]:
    """UPLOADS uploads released together; half announce their length, half are chunked (their
    space is reserved chunk by chunk as it arrives)."""
    start = threading.Barrier(UPLOADS)

    def one(n: int) -> int:
        data = payload(UPLOAD_SIZE, seed=n)
        body = data if n % 2 else iter([data[i : i + 50_000] for i in range(0, len(data), 50_000)])
        start.wait()
        return send(target, "PUT", f"/write?name=u{n}", body).status

    with ThreadPoolExecutor(UPLOADS) as pool:
        return list(pool.map(one, range(UPLOADS)))


def test_a_long_writes_reservation_is_renewed_while_its_bytes_come(bob):
    user, _ = bob
    space = Space(user.pk)
    space.cover(4 * C)
    almost_lapsed = timezone.now() + timedelta(seconds=5)
    Reservation.objects.update(expires_at=almost_lapsed)
    space.reservation.expires_at = almost_lapsed

    space.cover(4 * C)  # the next chunk arrives: nothing more to reserve, but time is short

    assert Reservation.objects.get().expires_at > timezone.now() + timedelta(minutes=9)


def test_a_lapsed_reservation_is_checked_again_before_it_counts_once_more(bob):
    user, as_bob = bob
    space = Space(user.pk)
    space.cover(6 * C)
    lapsed = timezone.now() - timedelta(seconds=1)
    Reservation.objects.update(expires_at=lapsed)
    space.reservation.expires_at = lapsed
    upload(as_bob, payload(6 * C))  # takes the room the lapsed reservation no longer holds

    with pytest.raises(QuotaExceeded):
        space.cover(6 * C)
