"""manage.py cleanup: orphaned chunk objects go, committed and in-flight ones stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from files.maintenance import scan_orphans
from files.models import File
from files.storage import chunk_key
from testing.fixtures import stored_keys
from testing.uploads import payload, upload

pytestmark = pytest.mark.django_db


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
    assert "1 uploads younger than 60 minutes" in capsys.readouterr().out


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
def test_objects_of_a_deleted_file_that_storage_kept_are_removed(client, store):
    file_id = upload(client, payload(40_000))["file_id"]
    File.objects.filter(pk=file_id).delete()  # as if deleting the objects had failed

    call_command("cleanup", "--grace-minutes", "0")

    assert stored_keys(store) == []


def test_unreachable_storage_fails_the_command(settings):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.S3_MAX_ATTEMPTS = 1

    with pytest.raises(CommandError, match="object storage failed"):
        call_command("cleanup", "--grace-minutes", "0")
