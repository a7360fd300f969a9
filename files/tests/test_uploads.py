"""Resumable uploads: the tus 1.0 protocol at /uploads/, every extension, through the test client.

(Real tus clients against gunicorn, and faults: test_tus_clients.py.)
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from files.models import Chunk, File, Upload
from files.storage import chunk_key
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import download, payload, sha256

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def metadata(**pairs: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items()
    )


def create(client, length: int | None = None, **headers):
    extra = {"HTTP_UPLOAD_LENGTH": str(length)} if length is not None else {}
    return client.post("/uploads/", **TUS, **extra, **headers)


def path_of(response) -> str:
    return response["Location"].removeprefix("http://testserver")


def patch(client, path: str, data: bytes, offset: int, **headers):
    return client.generic(
        "PATCH",
        path,
        data=data,
        content_type="application/offset+octet-stream",
        CONTENT_TYPE="application/offset+octet-stream",  # the test client drops both when empty
        CONTENT_LENGTH=str(len(data)),
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
        **headers,
    )


def upload_in_pieces(client, data: bytes, sizes: list[int], **create_headers) -> str:
    path = path_of(create(client, len(data), **create_headers))
    offset = 0
    for size in sizes:
        response = patch(client, path, data[offset : offset + size], offset)
        assert response.status_code == 204, response.content
        offset += size
        assert response["Upload-Offset"] == str(offset)
    return path.rsplit("/", 1)[1]


def test_options_describes_the_server(client, settings):
    response = client.options("/uploads/")

    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Max-Size"] == str(settings.MAX_UPLOAD_BYTES)
    assert set(response["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "expiration",
        "checksum",
        "termination",
        "concatenation",
        "concatenation-unfinished",
    }
    assert response["Tus-Checksum-Algorithm"] == "sha1,sha256,md5"
    assert "Tus-Resumable" not in response  # on every other answer, not this one


@pytest.mark.both_stores
@pytest.mark.parametrize(
    "sizes",
    [[5 * C + 17], [C, C, C, 2 * C + 17], [7000, 9000, 20000, C + 3, 5 * C + 17 - 36000 - (C + 3)]],
    ids=["one-patch", "chunk-aligned", "ragged"],
)
def test_an_upload_in_pieces_becomes_the_file(client, store, sizes):
    data = payload(5 * C + 17, seed=len(sizes))

    file_id = upload_in_pieces(client, data, sizes, HTTP_UPLOAD_METADATA=metadata(filename="r.bin"))

    assert download(client, file_id) == data
    file = File.objects.get(pk=file_id)
    assert (file.name, file.size, file.sha256, file.chunk_count) == (
        "r.bin",
        len(data),
        sha256(data),
        6,
    )
    assert stored_keys(store) == sorted(chunk_key(file_id, i) for i in range(6))
    rows = list(Chunk.objects.filter(blob_id=file_id).values_list("index", "size", "sha256"))
    assert rows == [(i, len(p), sha256(p)) for i, p in enumerate(pieces(data, C))]


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_head_tells_where_the_upload_stands_and_is_never_cached(client):
    header = metadata(filename="h.bin", kind="test")
    path = path_of(create(client, 3 * C, HTTP_UPLOAD_METADATA=header))
    patch(client, path, payload(C + 5), 0)

    response = client.head(path, **TUS)

    assert response.status_code == 200
    assert response["Upload-Offset"] == str(C + 5)
    assert response["Upload-Length"] == str(3 * C)
    assert response["Upload-Metadata"] == header
    assert response["Cache-Control"] == "no-store"
    assert response["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in response


def test_creation_answers_an_absolute_location_and_the_expiry(client, settings):
    settings.UPLOAD_EXPIRY_HOURS = 2
    before = timezone.now()

    response = create(client, 10)

    assert response.status_code == 201
    assert response["Location"].startswith("http://testserver/uploads/")
    assert response["Upload-Offset"] == "0"
    upload = Upload.objects.get()
    assert before + timedelta(hours=2) <= upload.expires_at <= timezone.now() + timedelta(hours=2)


@pytest.mark.parametrize("method", ["post", "head", "patch", "delete"])
def test_another_protocol_version_is_412_with_the_one_we_speak(client, method):
    path = path_of(create(client, 10)) if method != "post" else "/uploads/"

    response = client.generic(method.upper(), path, HTTP_TUS_RESUMABLE="0.2.2")

    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Resumable"] == "1.0.0"


def test_a_patch_at_the_wrong_offset_is_409_and_changes_nothing(client):
    path = path_of(create(client, 3 * C))
    patch(client, path, payload(100), 0)

    response = patch(client, path, payload(100), 50)

    assert response.status_code == 409
    assert response.json()["error"] == "offset_mismatch"
    assert client.head(path, **TUS)["Upload-Offset"] == "100"


def test_a_patch_without_the_octet_stream_type_is_415(client):
    path = path_of(create(client, 10))

    response = client.generic(
        "PATCH", path, data=b"x", content_type="text/plain", HTTP_UPLOAD_OFFSET="0", **TUS
    )

    assert response.status_code == 415


@pytest.mark.both_stores
@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_a_matching_checksum_is_accepted(client, algorithm):
    data = payload(2 * C + 9)
    path = path_of(create(client, len(data)))
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()

    response = patch(client, path, data, 0, HTTP_UPLOAD_CHECKSUM=f"{algorithm} {digest}")

    assert response.status_code == 204
    assert download(client, path.rsplit("/", 1)[1]) == data


@pytest.mark.both_stores
def test_a_wrong_checksum_is_460_and_the_patch_is_discarded(client, store):
    data = payload(5 * C)
    path = path_of(create(client, len(data)))
    patch(client, path, data[: C + 100], 0)  # a whole chunk and a partial one kept
    kept = stored_keys(store)
    wrong = base64.b64encode(hashlib.new("sha1", b"x").digest()).decode()  # noqa: S324

    response = patch(client, path, data[C + 100 :], C + 100, HTTP_UPLOAD_CHECKSUM=f"sha1 {wrong}")

    assert response.status_code == 460
    assert response.reason_phrase == "Checksum Mismatch"
    assert client.head(path, **TUS)["Upload-Offset"] == str(C + 100)
    assert stored_keys(store) == kept  # the chunks this PATCH stored are gone again
    assert patch(client, path, data[C + 100 :], C + 100).status_code == 204
    assert download(client, path.rsplit("/", 1)[1]) == data


def test_an_unknown_checksum_algorithm_is_400(client):
    path = path_of(create(client, 3))

    response = patch(client, path, b"abc", 0, HTTP_UPLOAD_CHECKSUM="crc32 AAAAAA==")

    assert response.status_code == 400


def test_creation_with_upload_stores_the_first_bytes(client):
    data = payload(3 * C)

    response = client.post(
        "/uploads/",
        data=data[:C],
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH=str(len(data)),
        **TUS,
    )

    assert response.status_code == 201
    assert response["Upload-Offset"] == str(C)
    assert patch(client, path_of(response), data[C:], C).status_code == 204
    assert download(client, path_of(response).rsplit("/", 1)[1]) == data


def test_a_deferred_length_is_told_with_the_last_patch(client):
    data = payload(2 * C + 1)
    path = path_of(create(client, HTTP_UPLOAD_DEFER_LENGTH="1"))
    patch(client, path, data[:C], 0)
    assert client.head(path, **TUS)["Upload-Defer-Length"] == "1"

    response = patch(client, path, data[C:], C, HTTP_UPLOAD_LENGTH=str(len(data)))

    assert response.status_code == 204
    assert download(client, path.rsplit("/", 1)[1]) == data


def test_an_empty_upload_is_a_file_at_once(client):
    response = create(client, 0)

    file_id = path_of(response).rsplit("/", 1)[1]
    assert response.status_code == 201
    assert download(client, file_id) == b""
    assert client.head(path_of(response), **TUS)["Upload-Offset"] == "0"


def test_termination_deletes_the_upload_and_its_objects(client, store):
    path = path_of(create(client, 3 * C))
    patch(client, path, payload(C + 10), 0)

    response = client.delete(path, **TUS)

    assert response.status_code == 204
    assert client.head(path, **TUS).status_code == 404
    assert stored_keys(store) == []


def test_x_http_method_override_stands_for_the_method(client):
    path = path_of(create(client, 4))

    response = client.post(
        path,
        data=b"data",
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET="0",
        HTTP_X_HTTP_METHOD_OVERRIDE="PATCH",
        **TUS,
    )

    assert response.status_code == 204
    assert download(client, path.rsplit("/", 1)[1]) == b"data"


SPOOFED = metadata(filename="a\u202egpj.exe")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "invalid_upload_request"),  # neither a length nor a deferred one
        ({"HTTP_UPLOAD_LENGTH": "1", "HTTP_UPLOAD_DEFER_LENGTH": "1"}, "invalid_upload_request"),
        ({"HTTP_UPLOAD_LENGTH": "\u0663"}, "invalid_upload_request"),
        (
            {"HTTP_UPLOAD_LENGTH": "5", "HTTP_UPLOAD_METADATA": "filename !!!"},
            "invalid_upload_request",
        ),
        (
            {
                "HTTP_UPLOAD_LENGTH": "5",
                "HTTP_UPLOAD_METADATA": metadata(filename="a\u202egpj.exe"),
            },
            "invalid_name",
        ),
    ],
    ids=["no-length", "both-lengths", "other-digits", "bad-base64", "bidi-name"],
)
def test_a_malformed_creation_is_400(client, headers, code):
    response = client.post("/uploads/", **TUS, **headers)

    assert response.status_code == 400
    assert response.json()["error"] == code
    assert not Upload.objects.exists()


def test_uploads_over_the_limit_are_413(client, settings):
    settings.MAX_UPLOAD_BYTES = 3 * C
    assert create(client, 3 * C + 1).status_code == 413
    path = path_of(create(client, 2 * C))

    response = patch(client, path, payload(2 * C + 1), 0)

    assert response.status_code == 413


def test_an_expired_upload_is_410(client):
    path = path_of(create(client, 10))
    Upload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert client.head(path, **TUS).status_code == 410
    assert patch(client, path, b"x", 0).status_code == 410


def test_a_patch_while_another_holds_the_lock_is_423_until_its_lease_ends(client):
    path = path_of(create(client, 10))
    Upload.objects.update(
        lock_token="another", lock_expires_at=timezone.now() + timedelta(minutes=1)
    )

    assert patch(client, path, b"0123456789", 0).status_code == 423

    Upload.objects.update(lock_expires_at=timezone.now() - timedelta(seconds=1))  # it died
    assert patch(client, path, b"0123456789", 0).status_code == 204


def test_a_body_that_breaks_off_keeps_what_arrived(client, store):
    data = payload(4 * C)
    path = path_of(create(client, len(data)))
    broken = io.BytesIO(data[: 2 * C + 300])  # announced as the whole upload

    response = client.generic(
        "PATCH",
        path,
        CONTENT_TYPE="application/offset+octet-stream",
        CONTENT_LENGTH=str(len(data)),
        HTTP_UPLOAD_OFFSET="0",
        **TUS,
        **{"wsgi.input": broken},
    )

    # 409, which tus clients retry, with the offset reached: every byte that arrived is kept.
    assert response.status_code == 409
    assert response.json()["error"] == "upload_interrupted"
    assert response["Upload-Offset"] == str(2 * C + 300)
    assert f"ended after {2 * C + 300} of {4 * C} bytes" in response.json()["detail"]
    assert client.head(path, **TUS)["Upload-Offset"] == str(2 * C + 300)
    assert patch(client, path, data[2 * C + 300 :], 2 * C + 300).status_code == 204
    assert download(client, path.rsplit("/", 1)[1]) == data


def test_a_changed_partial_chunk_is_never_built_upon(client, store):
    path = path_of(create(client, 3 * C))
    patch(client, path, payload(C + 40), 0)
    upload_id = path.rsplit("/", 1)[1]
    store.put(chunk_key(upload_id, 1), b"x" * 40)  # the kept partial chunk, damaged

    response = patch(client, path, payload(10, seed=1), C + 40)

    assert response.status_code == 502
    assert response.json()["error"] == "chunk_corrupt"


# --- concatenation ------------------------------------------------------------------------------


def partial(client, data: bytes) -> str:
    path = path_of(create(client, len(data), HTTP_UPLOAD_CONCAT="partial"))
    if data:
        assert patch(client, path, data, 0).status_code == 204
    return path


@pytest.mark.both_stores
def test_a_final_upload_concatenates_its_parts_without_copying(client, store):
    datas = [payload(C + 7, seed=1), payload(2 * C, seed=2), b"", payload(5, seed=3)]
    parts = [partial(client, data) for data in datas]
    objects = stored_keys(store)

    response = create(
        client,
        HTTP_UPLOAD_CONCAT="final;" + " ".join(f"http://testserver{p}" for p in parts),
        HTTP_UPLOAD_METADATA=metadata(filename="joined.bin"),
    )

    assert response.status_code == 201
    file_id = path_of(response).rsplit("/", 1)[1]
    whole = b"".join(datas)
    assert download(client, file_id) == whole
    file = File.objects.get(pk=file_id)
    assert (file.name, file.sha256, file.size) == ("joined.bin", sha256(whole), len(whole))
    assert stored_keys(store) == objects  # nothing copied: the parts' objects serve the file
    keys = {c.key.split("/")[1] for c in Chunk.objects.filter(blob_id=file_id)}
    assert keys <= {p.rsplit("/", 1)[1] for p in parts}
    assert client.delete(f"/files/{file_id}").status_code == 204  # to the trash
    (trashed,) = client.get("/trash").json()["entries"]
    assert client.delete(f"/trash/{trashed['trash_id']}").status_code == 204
    assert stored_keys(store) == []  # purging the file deleted its parts' objects


def test_a_final_upload_may_come_before_its_parts_are_finished(client):
    data = payload(3 * C, seed=4)
    first = partial(client, data[:C])
    second = path_of(create(client, 2 * C, HTTP_UPLOAD_CONCAT="partial"))
    final = path_of(create(client, HTTP_UPLOAD_CONCAT=f"final;{first} {second}"))

    head = client.head(final, **TUS)
    assert "Upload-Offset" not in head  # not concatenated yet
    assert head["Upload-Length"] == str(3 * C)
    assert patch(client, final, b"x", 0).status_code == 403
    patch(client, second, data[C:], 0)  # the last part: the final is committed now

    assert download(client, final.rsplit("/", 1)[1]) == data
    assert client.head(final, **TUS)["Upload-Offset"] == str(3 * C)


def test_a_part_belongs_to_one_final_upload_only(client):
    part = partial(client, b"abc")
    assert create(client, HTTP_UPLOAD_CONCAT=f"final;{part}").status_code == 201

    response = create(client, HTTP_UPLOAD_CONCAT=f"final;{part}")

    assert response.status_code == 409
    assert response.json()["error"] == "part_unusable"


def test_a_part_named_twice_is_400(client):
    part = partial(client, b"abc")

    response = create(client, HTTP_UPLOAD_CONCAT=f"final;{part} {part}")

    assert response.status_code == 400
    assert Upload.objects.get(pk=part.rsplit("/", 1)[1]).final_id is None


def test_a_final_upload_being_committed_elsewhere_is_committed_once_by_a_later_head(client):
    first, second = (
        partial(client, b"abc"),
        path_of(create(client, 3, HTTP_UPLOAD_CONCAT="partial")),
    )
    final = path_of(create(client, HTTP_UPLOAD_CONCAT=f"final;{first} {second}"))
    final_id = final.rsplit("/", 1)[1]
    Upload.objects.filter(pk=final_id).update(  # a request holds it: it will not commit twice
        lock_token="another", lock_expires_at=timezone.now() + timedelta(minutes=1)
    )

    assert patch(client, second, b"def", 0).status_code == 204
    assert not File.objects.filter(pk=final_id).exists()

    Upload.objects.filter(pk=final_id).update(lock_expires_at=timezone.now())  # it died
    assert client.head(final, **TUS)["Upload-Offset"] == "6"
    assert download(client, final_id) == b"abcdef"


# --- a commit that failed ------------------------------------------------------------------------


@pytest.fixture
def database_down_at_the_commit(monkeypatch):
    """The database fails once, at the moment an upload would be committed."""
    from files.uploads import commit as uploads
    from labdropbox.api.errors import DatabaseUnavailable

    save_blob = uploads.save_blob

    def database_down_once(*args, **kwargs):
        monkeypatch.setattr(uploads, "save_blob", save_blob)
        raise DatabaseUnavailable()

    monkeypatch.setattr(uploads, "save_blob", database_down_once)


@pytest.mark.parametrize("resumed_by", ["HEAD", "PATCH"])
def test_a_failed_commit_loses_nothing_and_the_resuming_client_commits(
    client, database_down_at_the_commit, resumed_by
):
    data = payload(2 * C + 5)
    path = path_of(create(client, len(data)))

    assert patch(client, path, data, 0).status_code == 503
    upload = Upload.objects.get(pk=path.rsplit("/", 1)[1])
    assert (upload.offset, upload.completed_at, upload.lock_token) == (len(data), None, "")

    if resumed_by == "HEAD":  # a tus client asks where it stands first
        answer = client.head(path, **TUS)
        assert answer.status_code == 200
    else:  # or sends what it thinks is left: nothing
        answer = patch(client, path, b"", len(data))
        assert answer.status_code == 204

    assert answer["Upload-Offset"] == str(len(data))
    assert "Upload-Expires" not in answer  # finished
    assert download(client, str(upload.id)) == data
    assert File.objects.get(pk=upload.id).sha256 == sha256(data)


# --- bodies that break, and requests that overlap ----------------------------------------------


class Breaking(io.RawIOBase):
    """A request body that gives `data` a little at a time, then fails like a reset connection.
    `meanwhile` runs before its last piece is handed out: as if another request acted while
    this one was reading."""

    def __init__(self, data: bytes, meanwhile=None) -> None:
        self.data, self.sent, self.meanwhile = data, 0, meanwhile

    def read(self, size: int = -1) -> bytes:
        if self.sent == len(self.data):
            raise ConnectionResetError("connection reset by peer")
        piece = self.data[self.sent : self.sent + min(size, 5000)]
        self.sent += len(piece)
        if self.sent == len(self.data) and self.meanwhile is not None:
            self.meanwhile()
        return piece


def patch_body(client, path: str, body, length: int, offset: int = 0):
    return client.generic(
        "PATCH",
        path,
        CONTENT_TYPE="application/offset+octet-stream",
        CONTENT_LENGTH=str(length),
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
        **{"wsgi.input": body},
    )


def test_a_reset_connection_keeps_the_bytes_of_the_chunk_it_was_reading(client, store):
    data = payload(4 * C)
    path = path_of(create(client, len(data)))

    response = patch_body(client, path, Breaking(data[: 2 * C + 300]), len(data))

    assert (response.status_code, response.json()["error"]) == (409, "upload_interrupted")
    assert response["Upload-Offset"] == str(2 * C + 300)
    assert client.head(path, **TUS)["Upload-Offset"] == str(2 * C + 300)
    assert patch(client, path, data[2 * C + 300 :], 2 * C + 300).status_code == 204
    assert download(client, path.rsplit("/", 1)[1]) == data


def test_a_request_that_lost_its_lock_writes_nothing_more(client, store):
    path = path_of(create(client, 3 * C))
    upload_id = path.rsplit("/", 1)[1]

    def another_request_took_over():  # as when this one stalled past its lease
        Upload.objects.filter(pk=upload_id).update(lock_token="another")

    body = Breaking(payload(C // 2), meanwhile=another_request_took_over)
    response = patch_body(client, path, body, 3 * C)

    assert (response.status_code, response.json()["error"]) == (423, "upload_locked")
    assert stored_keys(store) == []  # its partial chunk was not written over the other's
    assert Upload.objects.get(pk=upload_id).offset == 0


def test_a_length_told_by_an_empty_patch_makes_the_kept_partial_chunk_the_last(client, store):
    data = payload(C + 100)
    path = path_of(create(client, HTTP_UPLOAD_DEFER_LENGTH="1"))
    assert patch(client, path, data, 0).status_code == 204

    response = patch(client, path, b"", len(data), HTTP_UPLOAD_LENGTH=str(len(data)))

    assert response.status_code == 204
    file_id = path.rsplit("/", 1)[1]
    assert download(client, file_id) == data
    assert [chunk.size for chunk in Chunk.objects.filter(blob_id=file_id)] == [C, 100]


def test_terminating_an_upload_a_request_is_writing_to_is_423(client, store):
    path = path_of(create(client, 10))
    patch(client, path, b"01234", 0)
    held = timezone.now() + timedelta(minutes=1)
    Upload.objects.update(lock_token="writing", lock_expires_at=held)

    response = client.delete(path, **TUS)

    assert (response.status_code, response.json()["error"]) == (423, "upload_locked")
    assert Upload.objects.filter(offset=5).exists()


def test_a_final_upload_made_while_its_last_part_is_arriving_is_committed_by_that_part(client):
    first = partial(client, b"abc")
    second = path_of(create(client, 3, HTTP_UPLOAD_CONCAT="partial"))
    made: list = []

    def final_created_meanwhile():
        made.append(create(client, HTTP_UPLOAD_CONCAT=f"final;{first} {second}"))

    response = patch_body(client, second, Breaking(b"def", meanwhile=final_created_meanwhile), 3)

    assert response.status_code == 204
    final_id = path_of(made[0]).rsplit("/", 1)[1]
    assert File.objects.filter(pk=final_id).exists()  # no HEAD needed
    assert download(client, final_id) == b"abcdef"


def test_a_terminated_final_uploads_file_goes_to_the_trash_and_its_parts_with_its_purge(
    client, store
):
    parts = [partial(client, b"abc"), partial(client, b"def")]
    final = path_of(create(client, HTTP_UPLOAD_CONCAT="final;" + " ".join(parts)))
    assert client.head(parts[0], **TUS).status_code == 404  # consumed by the file

    assert client.delete(final, **TUS).status_code == 204

    assert client.get(f"/read/{final.rsplit('/', 1)[1]}").status_code == 404
    (trashed,) = client.get("/trash").json()["entries"]
    assert len(stored_keys(store)) == 2  # kept while the file is in the trash
    assert client.delete(f"/trash/{trashed['trash_id']}").status_code == 204
    assert stored_keys(store) == []
    again = create(client, HTTP_UPLOAD_CONCAT="final;" + " ".join(parts))
    assert (again.status_code, again.json()["error"]) == (409, "part_unusable")


def test_a_failed_creation_with_upload_says_where_the_upload_is(client):
    response = client.post(
        "/uploads/",
        data=b"hello",
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_CHECKSUM="sha256 " + base64.b64encode(hashlib.sha256(b"x").digest()).decode(),
        **TUS,
    )

    assert response.status_code == 460
    path = path_of(response)
    assert client.head(path, **TUS)["Upload-Offset"] == "0"  # the checksummed bytes were not kept
    assert patch(client, path, b"0123456789", 0).status_code == 204
