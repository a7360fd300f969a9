"""Deletes and overwrites can be undone: files and folders go to the trash with their paths and
come back; a write to a path keeps the content it replaces as a version, readable and restorable;
conditional writes refuse what would lose an update; retention and purges free what nothing else
needs, and quotas count what is stored."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.utils import timezone

from files.models import Blob, Entry, TrashEntry, Version
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import download, payload, send

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def put(client, path: str, data: bytes, **headers: str):
    return send(client, "PUT", f"/write?path={quote(path)}", data, headers)


def file_id_at(client, path: str, data: bytes) -> str:
    return json.loads(put(client, path, data).body)["file_id"]


def post_json(client, url: str, body: dict | None = None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def the_trash(client) -> list[dict]:
    return client.get("/trash").json()["entries"]


# --- the trash -----------------------------------------------------------------------------------


def test_a_deleted_file_waits_in_the_trash_with_where_it_was(client):
    file_id = file_id_at(client, "/docs/plan.txt", b"plan")

    assert client.delete(f"/files/{file_id}").status_code == 204

    assert client.get(f"/read/{file_id}").status_code == 404
    assert client.get("/files?path=/docs").json()["entries"] == []
    (item,) = the_trash(client)
    assert (item["kind"], item["name"], item["original_path"], item["file_id"]) == (
        "file",
        "plan.txt",
        "/docs/plan.txt",
        file_id,
    )
    restored = post_json(client, f"/trash/{item['trash_id']}/restore")
    assert (restored.status_code, restored.json()["path"]) == (200, "/docs/plan.txt")
    assert download(client, file_id) == b"plan"
    assert the_trash(client) == []


def test_a_trashed_file_is_404_by_each_of_its_versions_ids_too(client):
    """/read/<version_id> (what a tus upload that overwrote is read by) is cached under that
    id: the trash must reach it as it reaches the file's own id."""
    file_id = file_id_at(client, "/docs/notes.txt", b"one")
    second = json.loads(put(client, "/docs/notes.txt", b"two").body)["version_id"]
    assert download(client, second) == b"two"  # now cached under the version's id
    assert download(client, file_id) == b"two"

    assert client.delete(f"/files/{file_id}").status_code == 204

    assert client.get(f"/read/{second}").status_code == 404
    assert client.get(f"/read/{file_id}").status_code == 404
    (item,) = the_trash(client)
    assert post_json(client, f"/trash/{item['trash_id']}/restore").status_code == 200
    assert download(client, second) == b"two"


def test_a_trashed_folder_takes_everything_in_it_and_brings_it_back(client):
    ids = [file_id_at(client, f"/proj/{sub}/f.txt", sub.encode()) for sub in ("a", "b")]
    folder = Entry.objects.get(name="proj")

    assert client.delete(f"/folders/{folder.id}").status_code == 204

    assert all(client.get(f"/read/{file_id}").status_code == 404 for file_id in ids)
    (item,) = the_trash(client)
    assert (item["kind"], item["original_path"]) == ("folder", "/proj")
    post_json(client, f"/trash/{item['trash_id']}/restore")
    assert [download(client, file_id) for file_id in ids] == [b"a", b"b"]
    assert [e["name"] for e in client.get("/files?path=/proj").json()["entries"]] == ["a", "b"]


def test_restoring_into_a_folder_that_is_gone_makes_it_again(client):
    file_id = file_id_at(client, "/gone/away/x.txt", b"x")
    client.delete(f"/files/{file_id}")
    away = Entry.objects.get(name="gone")
    client.delete(f"/folders/{away.id}")
    (file_item,) = [i for i in the_trash(client) if i["kind"] == "file"]

    restored = post_json(client, f"/trash/{file_item['trash_id']}/restore")

    assert restored.json()["path"] == "/gone/away/x.txt"
    assert download(client, file_id) == b"x"


def test_a_name_taken_meanwhile_is_a_409_naming_it_and_another_path_can_be_given(client):
    first = file_id_at(client, "/a.txt", b"first")
    client.delete(f"/files/{first}")
    file_id_at(client, "/a.txt", b"second")
    (item,) = the_trash(client)

    taken = post_json(client, f"/trash/{item['trash_id']}/restore")
    beside = post_json(client, f"/trash/{item['trash_id']}/restore", {"path": "/a (old).txt"})

    assert (taken.status_code, taken.json()["error"]) == (409, "name_taken")
    assert "/a.txt" in taken.json()["detail"]
    assert (beside.status_code, beside.json()["path"]) == (200, "/a (old).txt")
    assert download(client, first) == b"first"


@pytest.mark.both_stores
def test_purging_removes_the_content_for_good_and_frees_the_space(client, store):
    file_id = file_id_at(client, "/big.bin", payload(3 * C))
    client.delete(f"/files/{file_id}")
    assert client.get("/me").json()["trash_bytes"] == 3 * C
    (item,) = the_trash(client)

    assert client.delete(f"/trash/{item['trash_id']}").status_code == 204

    assert stored_keys(store) == []
    assert not Blob.objects.exists() and not Entry.objects.filter(pk=file_id).exists()
    assert client.get("/me").json()["stored_bytes"] == 0
    assert client.delete(f"/trash/{item['trash_id']}").status_code == 404


def test_purging_a_copy_keeps_the_content_the_original_still_needs(client, store):
    file_id = file_id_at(client, "/a.bin", payload(2 * C))
    copy_id = post_json(client, f"/files/{file_id}/copy", {"path": "/b.bin"}).json()["file_id"]
    client.delete(f"/files/{copy_id}")
    (item,) = the_trash(client)

    client.delete(f"/trash/{item['trash_id']}")

    assert len(stored_keys(store)) == 2
    assert download(client, file_id) == payload(2 * C)


def test_the_trash_and_replaced_versions_are_kept_for_their_retention_days(client, store, settings):
    settings.TRASH_RETENTION_DAYS = settings.VERSION_RETENTION_DAYS = 30
    old = file_id_at(client, "/old.txt", b"old")
    client.delete(f"/files/{old}")
    kept = file_id_at(client, "/kept.txt", b"v1")
    put(client, "/kept.txt", b"v2")

    call_command("cleanup", "--grace-minutes", "0")  # nothing is old enough yet
    assert len(the_trash(client)) == 1 and Version.objects.filter(file_id=kept).count() == 2

    past = timezone.now() - timedelta(days=31)
    TrashEntry.objects.update(trashed_at=past)
    Version.objects.exclude(replaced_at=None).update(replaced_at=past)
    call_command("cleanup", "--grace-minutes", "0")

    assert the_trash(client) == []
    assert Version.objects.filter(file_id=kept).count() == 1
    assert download(client, kept) == b"v2"
    assert len(stored_keys(store)) == 1  # v2's chunk: old.txt and v1 are gone


# --- versions ------------------------------------------------------------------------------------


def test_an_overwrite_keeps_the_old_content_as_a_readable_version(client):
    file_id = file_id_at(client, "/r.csv", b"first,content")
    second = put(client, "/r.csv", b"second,content,longer")

    assert second.status == 200
    assert json.loads(second.body)["message"] == "New version stored"
    versions = client.get(f"/files/{file_id}/versions").json()["versions"]
    assert [(v["size"], v["current"]) for v in versions] == [(21, True), (13, False)]
    old = versions[1]["version_id"]
    assert b"".join(client.get(f"/read/{file_id}?version={old}").streaming_content) == (
        b"first,content"
    )
    ranged = client.get(f"/read/{file_id}?version={old}", HTTP_RANGE="bytes=6-9")
    assert (ranged.status_code, b"".join(ranged.streaming_content)) == (206, b"cont")
    assert download(client, file_id) == b"second,content,longer"
    assert client.get(f"/read/{file_id}")["ETag"] == f'"{versions[0]["sha256"]}"'


def test_restoring_a_version_makes_a_new_current_version_and_loses_nothing(client, store):
    file_id = file_id_at(client, "/f.txt", b"one")
    put(client, "/f.txt", b"two")
    versions = client.get(f"/files/{file_id}/versions").json()["versions"]
    blobs = Blob.objects.count()

    restored = post_json(client, f"/files/{file_id}/versions/{versions[1]['version_id']}/restore")

    assert restored.status_code == 201
    assert download(client, file_id) == b"one"
    after = client.get(f"/files/{file_id}/versions").json()["versions"]
    assert [v["sha256"] for v in after] == [versions[1]["sha256"], *[v["sha256"] for v in versions]]
    assert Blob.objects.count() == blobs  # the old content is shared, not copied


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": "*"}, 412),
        ({"If-Match": '"0000"'}, 412),
        ({"If-Match": "*"}, 200),
    ],
    ids=["none-match-star", "match-other", "match-star"],
)
def test_conditional_overwrites(client, headers, status):
    put(client, "/c.txt", b"current")

    reply = put(client, "/c.txt", b"new", **headers)

    assert reply.status == status
    expected = b"new" if status == 200 else b"current"
    assert (
        download(client, json.loads(client.get("/files").content)["files"][0]["file_id"])
        == expected
    )


def test_if_match_with_the_current_sha256_overwrites_and_a_stale_one_is_refused(client):
    first = json.loads(put(client, "/doc.txt", b"v1").body)
    second = json.loads(put(client, "/doc.txt", b"v2", **{"If-Match": f'"{first["sha256"]}"'}).body)

    stale = put(client, "/doc.txt", b"lost update", **{"If-Match": f'"{first["sha256"]}"'})

    assert second["message"] == "New version stored"
    assert (stale.status, json.loads(stale.body)["error"]) == (412, "precondition_failed")
    assert download(client, first["file_id"]) == b"v2"


def test_if_none_match_star_makes_a_new_file_and_if_match_needs_one(client):
    assert put(client, "/new.txt", b"x", **{"If-None-Match": "*"}).status == 201
    assert put(client, "/none.txt", b"x", **{"If-Match": "*"}).status == 412


def test_a_refused_condition_is_412_before_the_body_is_read(client, store):
    put(client, "/c.txt", b"current")
    before = stored_keys(store)

    reply = put(client, "/c.txt", payload(5 * C), **{"If-None-Match": "*"})

    assert reply.status == 412
    assert stored_keys(store) == before
    assert Blob.objects.count() == 1


def test_versions_and_trash_are_counted_once_each_in_me(client):
    file_id = file_id_at(client, "/v.bin", payload(1000))
    put(client, "/v.bin", payload(3000, seed=1))
    post_json(client, f"/files/{file_id}/copy", {"path": "/copy.bin"})  # shares v2
    other = file_id_at(client, "/t.bin", payload(500, seed=2))
    client.delete(f"/files/{other}")

    me = client.get("/me").json()

    assert (me["current_bytes"], me["versions_bytes"], me["trash_bytes"]) == (3000, 1000, 500)
    assert me["stored_bytes"] == 4500


def test_a_version_of_another_file_is_404(client):
    one = file_id_at(client, "/one.txt", b"1")
    two = file_id_at(client, "/two.txt", b"2")

    assert client.get(f"/read/{one}?version={two}").status_code == 404
    assert client.post(f"/files/{one}/versions/{two}/restore").status_code == 404
    assert client.get(f"/read/{one}?version=nonsense").status_code == 404
