"""GET /files, GET /files/{id}, DELETE /files/{id}."""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.management import call_command

from files.models import Chunk, File
from files.storage import chunk_key, get_store
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import download, payload, sha256, upload

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def test_list_is_newest_first_and_pages_with_limit_and_offset(client):
    ids = []
    for index in range(5):
        ids.append(upload(client, payload(index), name=f"f{index}")["file_id"])
        time.sleep(0.002)
    newest_first = ids[::-1]

    first = client.get("/files", {"limit": 2}).json()
    second = client.get("/files", {"limit": 2, "offset": 2}).json()
    last = client.get("/files", {"limit": 2, "offset": 4}).json()

    assert [f["file_id"] for f in first["files"]] == newest_first[:2]
    assert [f["file_id"] for f in second["files"]] == newest_first[2:4]
    assert [f["file_id"] for f in last["files"]] == newest_first[4:]
    assert (first["next_offset"], second["next_offset"], last["next_offset"]) == (2, 4, None)
    file = File.objects.get(pk=ids[4])
    assert first["files"][0] == {
        "file_id": ids[4],
        "file_name": "f4",
        "file_size": 4,
        "chunk_count": 1,
        "sha256": sha256(payload(4)),
        "created_at": file.created_at.isoformat(),
        "modified_at": file.modified_at.isoformat(),
        "version_id": ids[4],  # a new file's first version has the file's id
        "folder_id": str(file.parent_id),
        "path": "/f4",
    }


def test_list_defaults_to_50(client):
    response = client.get("/files").json()

    assert (response["limit"], response["offset"], response["files"]) == (50, 0, [])


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "0"},  # next_offset would point back at this page, forever
        {"offset": "x"},
        {"limit": "9" * 5000},  # more digits than int() accepts
        {"offset": "1" * 5000},
        {"limit": "\u00b2"},  # superscript two: str.isdigit() says yes, int() says no
        {"offset": "\u0663"},  # Arabic-Indic three
    ],
    ids=["too-many", "negative", "zero", "word", "huge-limit", "huge-offset", "sup2", "arabic"],
)
def test_list_rejects_unbounded_or_malformed_paging(client, query):
    response = client.get("/files", query)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_parameter"


def test_metadata_lists_the_chunks(client):
    data = payload(2 * C + 3)
    file_id = upload(client, data, name="m.bin")["file_id"]

    body = client.get(f"/files/{file_id}").json()

    assert body["file_name"] == "m.bin"
    assert body["file_size"] == len(data)
    assert body["chunks"] == [
        {"index": i, "size": len(part), "sha256": sha256(part), "key": chunk_key(file_id, i)}
        for i, part in enumerate([data[:C], data[C : 2 * C], data[2 * C :]])
    ]


@pytest.mark.parametrize("file_id", [str(uuid.uuid4()), "nope"])
def test_metadata_of_unknown_file_is_404(client, file_id):
    response = client.get(f"/files/{file_id}")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.both_stores
def test_delete_moves_to_the_trash_and_its_purge_removes_rows_objects_and_the_cached_entry(
    client, store
):
    keep = upload(client, payload(C), name="keep")["file_id"]
    file_id = upload(client, payload(3 * C), name="gone")["file_id"]
    download(client, file_id)  # cached now

    response = client.delete(f"/files/{file_id}")

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/read/{file_id}").status_code == 404  # the cached entry is a tombstone
    (trashed,) = client.get("/trash").json()["entries"]
    assert client.delete(f"/trash/{trashed['trash_id']}").status_code == 204
    assert not File.objects.filter(pk=file_id).exists()
    assert not Chunk.objects.filter(blob_id=file_id).exists()
    assert stored_keys(store) == [chunk_key(keep, 0)]
    assert client.get(f"/read/{file_id}").status_code == 404
    assert client.get(f"/files/{file_id}").status_code == 404
    assert client.delete(f"/files/{file_id}").status_code == 404


def test_a_purge_while_storage_is_down_leaves_objects_for_cleanup(client, settings, s3_server):
    settings.MINIO_ENDPOINT = s3_server.endpoint
    store = get_store()
    store.ensure_bucket()
    file_id = upload(client, payload(2 * C))["file_id"]
    assert client.delete(f"/files/{file_id}").status_code == 204
    (trashed,) = client.get("/trash").json()["entries"]
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.STORAGE_MAX_ATTEMPTS = 1

    assert client.delete(f"/trash/{trashed['trash_id']}").status_code == 204
    assert client.get(f"/read/{file_id}").status_code == 404

    settings.MINIO_ENDPOINT = s3_server.endpoint
    assert stored_keys(store) == [chunk_key(file_id, 0), chunk_key(file_id, 1)]
    call_command("cleanup", "--grace-minutes", "0")
    assert stored_keys(store) == []


def test_json_answers_and_json_errors_end_with_a_newline(client):
    file_id = upload(client, b"abc")["file_id"]

    for response in (
        client.get(f"/files/{file_id}"),
        client.get("/files"),
        client.get(f"/files/{uuid.uuid4()}"),  # a 404's JSON error
    ):
        assert response.content.endswith(b"}\n")
        assert response["Content-Length"] == str(len(response.content))
