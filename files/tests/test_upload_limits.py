"""Resumable uploads in the tree and within their limits: metadata `path` places the file (a
taken path gets a new version, read at /read/<upload_id>); one user's unfinished uploads are
capped; a complete upload takes no more bytes; a concatenation is held to the size limit and the
quota as any upload is; a file's share links are capped and listed in pages."""

from __future__ import annotations

import base64
import json

import pytest

from files.models import Entry, Upload
from testing.uploads import TUS, download, payload, send, tus_create, tus_head, tus_patch

pytestmark = pytest.mark.django_db


def with_metadata(client, length: int | None, **pairs: str) -> str:
    encoded = ",".join(f"{key} {base64.b64encode(v.encode()).decode()}" for key, v in pairs.items())
    headers = {**TUS, "Upload-Metadata": encoded}
    headers.update({"Upload-Length": str(length)} if length is not None else {})
    reply = send(client, "POST", "/uploads/", b"", headers)
    assert reply.status == 201, reply.body
    return "/uploads/" + reply.headers["Location"].rsplit("/", 1)[1]


def error_of(reply) -> tuple[int, str]:
    return reply.status, json.loads(reply.body)["error"]


# --- where an upload lands -----------------------------------------------------------------------


def test_metadata_path_places_the_file_and_makes_its_folders(client):
    data = payload(3000, seed=1)
    path = with_metadata(client, len(data), path="/incoming/2026/run.csv")
    assert tus_patch(client, path, data, 0).status == 204
    upload_id = path.rsplit("/", 1)[1]

    listing = client.get("/files?path=/incoming/2026").json()
    assert [(e["name"], e["file_id"]) for e in listing["entries"]] == [("run.csv", upload_id)]
    assert download(client, upload_id) == data


def test_an_upload_to_a_taken_path_is_a_new_version_read_at_the_uploads_id(client):
    first, second = payload(2000, seed=2), payload(2500, seed=3)
    made = json.loads(send(client, "PUT", "/write?path=/a/run.csv", first).body)

    path = with_metadata(client, len(second), path="/a/RUN.csv")  # the same name, another case
    assert tus_patch(client, path, second, 0).status == 204
    upload_id = path.rsplit("/", 1)[1]

    assert download(client, made["file_id"]) == second  # the file, now at its new version
    assert download(client, upload_id) == second  # the upload's id reads the version it made
    versions = client.get(f"/files/{made['file_id']}/versions").json()["versions"]
    assert [v["version_id"] for v in versions] == [upload_id, made["version_id"]]
    assert Entry.objects.filter(kind=Entry.Kind.FILE).count() == 1
    # A third write replaces it as current; /read/<upload_id> still reads what the upload sent.
    send(client, "PUT", "/write?path=/a/run.csv", b"third")
    assert download(client, upload_id) == second


def test_an_upload_whose_path_became_a_folder_lands_beside_it(client):
    data = payload(1000, seed=4)
    path = with_metadata(client, len(data), path="/results")
    client.post("/folders", data=json.dumps({"path": "/results"}), content_type="application/json")
    assert tus_patch(client, path, data, 0).status == 204  # its bytes are stored: it must land
    names = {e["name"]: e["kind"] for e in client.get("/files?path=/").json()["entries"]}
    assert names == {"results": "folder", "results (2)": "file"}


def test_an_upload_whose_folder_became_a_file_lands_in_a_folder_beside_it(client):
    data = payload(1000, seed=5)
    path = with_metadata(client, len(data), path="/p/q.bin")
    send(client, "PUT", "/write?path=/p", b"a file where the folder would go")
    assert tus_patch(client, path, data, 0).status == 204
    upload_id = path.rsplit("/", 1)[1]
    assert client.get(f"/files/{upload_id}").json()["path"] == "/p (2)/q.bin"
    assert download(client, upload_id) == data


def test_a_bad_path_is_refused_when_the_upload_is_created(client):
    encoded = base64.b64encode(b"/a/../b").decode()
    headers = {**TUS, "Upload-Length": "5", "Upload-Metadata": f"path {encoded}"}
    reply = send(client, "POST", "/uploads/", b"", headers)
    assert error_of(reply) == (400, "invalid_name")
    assert not Upload.objects.exists()


# --- limits --------------------------------------------------------------------------------------


def test_unfinished_uploads_are_capped_per_user_and_a_finished_one_frees_its_place(
    client, settings
):
    settings.MAX_UNFINISHED_UPLOADS = 2
    first = tus_create(client, 10)
    tus_create(client, 10)

    refused = send(client, "POST", "/uploads/", b"", {**TUS, "Upload-Length": "10"})
    assert error_of(refused) == (429, "too_many_uploads")
    assert Upload.objects.count() == 2

    assert tus_patch(client, first, b"0123456789", 0).status == 204  # finished
    assert send(client, "POST", "/uploads/", b"", {**TUS, "Upload-Length": "10"}).status == 201


def test_a_complete_upload_takes_no_more_bytes_but_an_empty_patch_is_answered(client):
    path = tus_create(client, 4)
    assert tus_patch(client, path, b"abcd", 0).status == 204

    assert error_of(tus_patch(client, path, b"more", 4)) == (403, "upload_complete")
    retried = client.generic(  # a client's retried last PATCH, its bytes all in already
        "PATCH",
        path,
        CONTENT_TYPE="application/offset+octet-stream",  # the test client drops it when empty
        CONTENT_LENGTH="0",
        HTTP_UPLOAD_OFFSET="4",
        HTTP_TUS_RESUMABLE="1.0.0",
    )
    assert retried.status_code == 204
    assert tus_head(client, path).headers["Upload-Offset"] == "4"


def test_a_concatenation_over_the_size_limit_is_413_whether_lengths_are_known_or_told_late(
    client, settings
):
    settings.MAX_UPLOAD_BYTES = 100
    parts = [tus_create(client, 60, concat="partial") for _ in range(2)]
    final = send(
        client, "POST", "/uploads/", b"", {**TUS, "Upload-Concat": "final;" + " ".join(parts)}
    )
    assert error_of(final) == (413, "too_large")

    late = [tus_create(client, None, concat="partial") for _ in range(2)]
    tus_create(client, None, concat="final;" + " ".join(late))
    assert tus_patch(client, late[0], b"x" * 60, 0, length=60).status == 204
    # The final upload is at most 100 bytes: the second part may not be told 60.
    told = tus_patch(client, late[1], b"y" * 60, 0, length=60)
    assert error_of(told) == (413, "too_large")
    assert not Entry.objects.filter(kind=Entry.Kind.FILE).exists()


def test_a_files_links_are_capped_and_listed_in_pages(client, settings):
    settings.MAX_LINKS_PER_FILE = 3
    file_id = json.loads(send(client, "PUT", "/write?name=shared.bin", b"data").body)["file_id"]
    made = [client.post(f"/files/{file_id}/links", content_type="application/json") for _ in "abc"]
    assert [response.status_code for response in made] == [201] * 3

    refused = client.post(f"/files/{file_id}/links", content_type="application/json")
    assert (refused.status_code, refused.json()["error"]) == (429, "too_many_links")

    first = client.get(f"/files/{file_id}/links?limit=2").json()
    rest = client.get(f"/files/{file_id}/links?limit=2&offset={first['next_offset']}").json()
    assert len(first["links"]) == 2 and len(rest["links"]) == 1 and rest["next_offset"] is None
    link_id = first["links"][0]["link_id"]
    assert client.delete(f"/files/{file_id}/links/{link_id}").status_code == 204
    assert (
        client.post(f"/files/{file_id}/links", content_type="application/json").status_code == 201
    )


def test_head_of_an_upload_whose_file_was_deleted_is_404_and_back_after_a_restore(client):
    path = tus_create(client, 4)
    assert tus_patch(client, path, b"abcd", 0).status == 204
    file_id = path.rsplit("/", 1)[1]

    assert client.delete(f"/files/{file_id}").status_code == 204
    assert tus_head(client, path).status == 404

    (item,) = client.get("/trash").json()["entries"]
    client.post(f"/trash/{item['trash_id']}/restore", content_type="application/json")
    assert tus_head(client, path).headers["Upload-Offset"] == "4"
