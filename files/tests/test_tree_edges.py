"""Edges of the tree that a review found: a COMMIT whose answer is lost keeps the objects of the
file it may have made; a finished part is terminated only while no final upload has claimed it;
a cache entry put back by a slow reader cannot outlive an overwrite; a folder of tens of
thousands of files is trashed and restored (its ids never one statement's parameters); a
replacing move cannot trash its own ancestor; numbered names stay within 255 bytes."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection

from files.metadata import CACHE_VERSION, RELOOK, cache_key, load_file_meta
from files.models import Entry, TrashEntry, Upload
from files.names import MAX_NAME_BYTES, name_key, numbered, sort_name
from files.operations import write as write_operation
from files.tree.moves import move
from files.tree.roots import tree_of
from labdropbox.api.callers import ANONYMOUS
from labdropbox.api.errors import IntoItself
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import TUS, download, payload, send, tus_create, tus_patch

C = TEST_CHUNK_SIZE


def put(client, path: str, data: bytes):  # noqa: ANN201
    return send(client, "PUT", f"/write?path={path}", data)


@pytest.mark.django_db(transaction=True)
def test_a_commit_whose_answer_is_lost_keeps_every_object(client, store, monkeypatch):
    """The COMMIT is applied and the connection drops before it says so: the client is told
    the database failed, and nothing the file may need is deleted."""
    real_place, real_commit = write_operation.place_blob, connection.commit
    armed = []

    def place_then_arm(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        placed = real_place(*args, **kwargs)
        armed.append(True)
        return placed

    def commit_then_fail() -> None:
        real_commit()
        if armed:
            armed.clear()
            raise OperationalError("server has gone away (after the commit)")

    monkeypatch.setattr(write_operation, "place_blob", place_then_arm)
    monkeypatch.setattr(connection, "commit", commit_then_fail)
    data = payload(3 * C, seed=1)

    reply = put(client, "/kept/data.bin", data)

    assert (reply.status, json.loads(reply.body)["error"]) == (503, "database_unavailable")
    monkeypatch.undo()
    (entry,) = client.get("/files?path=/kept").json()["entries"]
    assert download(client, entry["file_id"]) == data
    assert len(stored_keys(store)) == 3


@pytest.mark.django_db
def test_a_finished_part_is_terminated_with_its_objects_unless_a_final_upload_claimed_it(
    client, store
):
    free = tus_create(client, C + 1, concat="partial")
    assert tus_patch(client, free, payload(C + 1), 0).status == 204
    assert len(stored_keys(store)) == 2

    assert send(client, "DELETE", free, b"", TUS).status == 204
    assert not Upload.objects.exists() and stored_keys(store) == []

    claimed = tus_create(client, 5, concat="partial")
    tus_create(client, None, concat=f"final;{claimed}")
    refused = send(client, "DELETE", claimed, b"", TUS)
    assert (refused.status, json.loads(refused.body)["error"]) == (409, "part_unusable")


@pytest.mark.django_db
def test_a_reader_that_looked_up_before_an_overwrite_cannot_cache_the_old_version(client):
    file_id = json.loads(put(client, "/c/f.bin", b"old").body)["file_id"]
    stale = load_file_meta(uuid.UUID(file_id))  # a reader's lookup, just before the overwrite

    put(client, "/c/f.bin", b"new")
    put_back = cache.add(cache_key(stale.id), stale.to_cache(), version=CACHE_VERSION)

    assert not put_back
    assert cache.get(cache_key(stale.id), version=CACHE_VERSION) == RELOOK
    assert download(client, file_id) == b"new"


@pytest.mark.django_db
def test_a_folder_of_33_000_files_is_trashed_and_restored(client):
    made = json.loads(put(client, "/big/seed.bin", b"x").body)
    folder = Entry.objects.get(pk=made["file_id"]).parent
    names = [f"f{n:05d}.bin" for n in range(33_000)]  # more than SQLite's default 32,766
    Entry.objects.bulk_create(
        [
            Entry(kind=Entry.Kind.FILE, parent=folder, name=name, name_key=name_key(name),
                  sort_name=sort_name(name))
            for name in names
        ],
        batch_size=2000,
    )  # fmt: skip

    assert client.delete(f"/folders/{folder.id}").status_code == 204
    (item,) = client.get("/trash").json()["entries"]
    restored = client.post(f"/trash/{item['trash_id']}/restore", content_type="application/json")

    assert restored.status_code == 200
    assert download(client, made["file_id"]) == b"x"
    assert not TrashEntry.objects.exists()


@pytest.mark.django_db
def test_a_replacing_move_cannot_trash_what_holds_the_entry_it_moves(client):
    file_id = json.loads(put(client, "/a/b/x.bin", b"x").body)["file_id"]
    entry = Entry.objects.get(pk=file_id)

    with pytest.raises(IntoItself):
        move(entry, ["a", "b"], replace=True)

    assert download(client, file_id) == b"x"
    assert tree_of(ANONYMOUS) == entry.parent.parent.parent


@pytest.mark.parametrize(
    "name", ["a" * 250 + ".pdf", "é" * 127 + "x", "x." + "e" * 250, "report.pdf", ".profile"]
)
def test_a_numbered_name_stays_within_the_limit_and_keeps_what_it_can(name):
    made = numbered(name, 12)

    assert len(made.encode()) <= MAX_NAME_BYTES
    assert " (12)" in made
    if len(name.encode()) < 200:
        assert made.replace(" (12)", "") == name
