"""manage.py cleanup: objects no record covers go; committed and in-flight ones stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Reservation
from files.maintenance.cleanup import scan_orphans
from files.models import Blob, Chunk, Upload, Version
from files.storage import chunk_key
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import download, payload, upload

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def leave_orphan(store, chunks: int = 2) -> str:
    """What a killed upload leaves: chunk objects, no metadata."""
    file_id = str(uuid.uuid4())
    for index in range(chunks):
        store.put(chunk_key(file_id, index), payload(100, seed=index))
    return file_id


@pytest.mark.both_stores
def test_removes_orphans_older_than_the_grace_period(client, store, capsys):
    committed = upload(client, payload(40_000))["file_id"]
    orphan = leave_orphan(store)

    call_command("cleanup", "--grace-minutes", "0")

    output = capsys.readouterr().out
    assert stored_keys(store) == sorted(chunk_key(committed, i) for i in range(3))
    assert f"orphan {orphan}: 2 objects" in output
    assert "found 1 orphaned uploads (2 objects" in output
    assert "deleted 2 objects" in output


@pytest.mark.both_stores
def test_keeps_young_orphans_that_may_be_uploads_in_flight(store, capsys):
    in_flight = leave_orphan(store)

    call_command("cleanup")  # default grace: 60 minutes

    assert stored_keys(store) == [chunk_key(in_flight, 0), chunk_key(in_flight, 1)]
    assert "1 uncovered but younger than 60 minutes" in capsys.readouterr().out


@pytest.mark.both_stores
def test_an_upload_with_old_first_chunks_but_a_new_last_one_is_in_flight(store):
    in_flight = leave_orphan(store, chunks=3)
    newest = max(item.modified for item in store.list())
    grace = timedelta(minutes=60)

    # 30 minutes after its last chunk (whatever the age of its first): still in flight.
    assert scan_orphans(store, grace, now=newest + timedelta(minutes=30)).young == 1
    # 90 minutes after: abandoned.
    (orphan,) = scan_orphans(store, grace, now=newest + timedelta(minutes=90)).orphans
    assert orphan.file_id == in_flight


@pytest.mark.both_stores
def test_dry_run_deletes_nothing(store, capsys):
    orphan = leave_orphan(store)

    call_command("cleanup", "--grace-minutes", "0", "--dry-run")

    assert len(stored_keys(store)) == 2
    output = capsys.readouterr().out
    assert f"orphan {orphan}" in output
    assert "dry run: nothing deleted" in output


@pytest.mark.both_stores
def test_objects_of_purged_content_that_storage_kept_are_removed(client, store):
    file_id = upload(client, payload(40_000))["file_id"]
    # What a purge leaves when deleting the objects failed: no record covers them.
    Version.objects.filter(blob_id=file_id).delete()
    Chunk.objects.filter(blob_id=file_id).delete()
    Blob.objects.filter(pk=file_id).delete()

    call_command("cleanup", "--grace-minutes", "0")

    assert stored_keys(store) == []


def test_unreachable_storage_fails_the_command(settings):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.STORAGE_MAX_ATTEMPTS = 1

    with pytest.raises(CommandError, match="object storage failed"):
        call_command("cleanup", "--grace-minutes", "0")


# --- resumable uploads ---------------------------------------------------------------------------


def tus(client, method: str, path: str, data: bytes = b"", **headers):
    return client.generic(
        method,
        path,
        data=data,
        content_type="application/offset+octet-stream",
        HTTP_TUS_RESUMABLE="1.0.0",
        **headers,
    )


def started_upload(client, data: bytes, length: int, concat: str = "") -> str:
    extra = {"HTTP_UPLOAD_CONCAT": concat} if concat else {}
    created = tus(client, "POST", "/uploads/", HTTP_UPLOAD_LENGTH=str(length), **extra)
    path = created["Location"].removeprefix("http://testserver")
    if data:
        assert tus(client, "PATCH", path, data, HTTP_UPLOAD_OFFSET="0").status_code == 204
    return path.rsplit("/", 1)[1]


def expire(*upload_ids: str) -> None:
    Upload.objects.filter(pk__in=upload_ids).update(expires_at=timezone.now())


@pytest.mark.both_stores
def test_expired_uploads_go_with_their_objects_and_live_ones_stay(client, store, capsys):
    live = started_upload(client, payload(C + 9, seed=1), 3 * C)
    expired = started_upload(client, payload(2 * C + 3, seed=2), 3 * C)
    finished = started_upload(client, payload(C, seed=3), C)
    expire(expired, finished)

    call_command("cleanup", "--grace-minutes", "0")

    output = capsys.readouterr().out
    assert f"expired upload {expired}" in output
    assert set(Upload.objects.values_list("id", flat=True)) == {uuid.UUID(live)}
    owners = {key.split("/")[1] for key in stored_keys(store)}
    assert owners == {live, finished}  # the finished upload's file keeps its chunks
    assert download(client, finished) == payload(C, seed=3)
    assert tus(client, "HEAD", f"/uploads/{expired}").status_code == 404


def test_parts_a_live_final_upload_awaits_are_kept_past_their_own_expiry(client, store):
    done = started_upload(client, b"abc", 3, concat="partial")
    growing = started_upload(client, b"", 3, concat="partial")
    created = tus(client, "POST", "/uploads/", HTTP_UPLOAD_CONCAT=f"final;{done} {growing}")
    final = created["Location"].rsplit("/", 1)[1]
    expire(done)

    call_command("cleanup", "--grace-minutes", "0")

    assert Upload.objects.filter(pk=done).exists()
    tus(client, "PATCH", f"/uploads/{growing}", b"def", HTTP_UPLOAD_OFFSET="0")
    assert download(client, final) == b"abcdef"
    expire(done, growing, final)
    call_command("cleanup", "--grace-minutes", "0")
    assert not Upload.objects.exists()
    assert download(client, final) == b"abcdef"  # the file lives on the parts' objects


def test_lapsed_quota_reservations_are_removed_and_live_ones_kept(capsys):
    user = get_user_model().objects.create_user("ann")
    now = timezone.now()
    lapsed = Reservation.objects.create(user=user, bytes=5, expires_at=now - timedelta(seconds=1))
    live = Reservation.objects.create(user=user, bytes=7, expires_at=now + timedelta(minutes=9))

    call_command("cleanup", "--grace-minutes", "0")

    assert list(Reservation.objects.values_list("pk", flat=True)) == [live.pk]
    assert lapsed.pk != live.pk
    assert "removed 1 lapsed quota reservations" in capsys.readouterr().out
