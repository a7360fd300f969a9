from __future__ import annotations

import io
import threading
from urllib.parse import quote

import pytest

from files.buffers import chunk_budget
from files.models import Blob, Chunk, File
from files.operations.write import write_file
from files.storage import chunk_key, get_store
from labdropbox.api.callers import ANONYMOUS
from labdropbox.api.errors import IncompleteBody
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import download, payload, sha256, upload

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE
ROUND_TRIP_SIZES = [0, 1, C - 1, C, C + 1, 10 * C, 3 * C + 777]


@pytest.mark.both_stores
@pytest.mark.parametrize("size", ROUND_TRIP_SIZES)
def test_upload_then_download_returns_identical_bytes(client, size):
    data = payload(size)

    body = upload(client, data, name="round-trip.bin")

    assert body["file_size"] == size
    assert body["chunk_count"] == -(-size // C)
    assert body["sha256"] == sha256(data)
    assert body["file_name"] == "round-trip.bin"
    assert body["message"] == "File uploaded successfully"
    assert download(client, body["file_id"]) == data


def test_upload_answers_201_with_location(client):
    response = client.put("/write?name=a.txt", data=b"hello", content_type="text/plain")

    assert response.status_code == 201
    assert response["Location"] == f"/read/{response.json()['file_id']}"


def test_post_is_accepted_like_put(client):
    response = client.post("/write?name=a.txt", data=b"hello", content_type="text/plain")

    assert response.status_code == 201
    assert download(client, response.json()["file_id"]) == b"hello"


@pytest.mark.both_stores
def test_chunks_are_stored_under_their_keys_with_recorded_sizes_and_hashes(client, store):
    data = payload(2 * C + 100)

    file_id = upload(client, data)["file_id"]

    pieces = [data[0:C], data[C : 2 * C], data[2 * C :]]
    assert stored_keys(store) == sorted(chunk_key(file_id, i) for i in range(3))
    for index, piece in enumerate(pieces):
        assert store.get(chunk_key(file_id, index)) == piece
    file = File.objects.get(pk=file_id)
    assert (file.size, file.chunk_count, file.sha256) == (len(data), 3, sha256(data))
    rows = list(Chunk.objects.filter(blob_id=file_id).values_list("index", "size", "sha256"))
    assert rows == [(i, len(piece), sha256(piece)) for i, piece in enumerate(pieces)]


@pytest.mark.both_stores
def test_chunked_transfer_encoding_body_is_stored(client):
    data = payload(4 * C + 5)
    # What gunicorn hands over for `Transfer-Encoding: chunked`: a decoded, terminated stream.
    response = client.generic(
        "PUT",
        "/write?name=piped.bin",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True},
    )

    assert response.status_code == 201, response.content
    assert download(client, response.json()["file_id"]) == data


def test_chunked_body_on_a_server_that_cannot_decode_it_is_411(client):
    response = client.generic(
        "PUT", "/write?name=x", CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked"
    )

    assert response.status_code == 411
    assert response.json()["error"] == "length_required"


def test_body_without_length_is_411(client, store):
    response = client.generic("PUT", "/write?name=x", data=b"abc", CONTENT_LENGTH="")

    assert response.status_code == 411
    assert response.json() == {
        "error": "length_required",
        "detail": "send Content-Length or a chunked body",
    }
    assert stored_keys(store) == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?name=",
        "?name=" + "a" * 256,
        "?name=a%0Db",
        "?name=a%0Ab",
        "?name=a%00b",
        "?name=%7F",
        "?name=invoice%E2%80%AEfdp.exe",  # U+202E right-to-left override: shows "exe.pdf"
        "?name=a%E2%81%A6b.txt",  # U+2066 left-to-right isolate
        "?name=report%E2%80%8B.pdf",  # U+200B zero-width space
        "?name=%EF%BB%BFfile.txt",  # U+FEFF byte order mark
        "?name=a%E2%80%A8b",  # U+2028 line separator
        "?name=..%2F..%2Fetc%2Fpasswd",  # a name is not a path
        "?name=..",
        "?name=.",
        "?path=/a/../b",
        "?path=relative/b.txt",
        "?path=/",
        "?path=/a&name=b",
    ],
    ids=[
        "missing",
        "empty",
        "too-long",
        "cr",
        "lf",
        "nul",
        "del",
        "rlo",
        "lri",
        "zwsp",
        "bom",
        "line-separator",
        "slash",
        "dot-dot",
        "dot",
        "dot-dot-in-path",
        "relative-path",
        "root",
        "path-and-name",
    ],
)
def test_bad_names_are_400_and_store_nothing(client, store, query):
    response = client.put(f"/write{query}", data=b"data", content_type="text/plain")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_name"
    assert stored_keys(store) == []
    assert not File.objects.exists() and not Blob.objects.exists()


@pytest.mark.parametrize(
    "name",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt",
        "family-\U0001f468\u200d\U0001f469.png",
    ],
    ids=["persian-zwnj", "emoji-zwj"],
)
def test_joiners_that_scripts_and_emoji_need_are_kept(client, name):
    assert upload(client, b"x", name=name)["file_name"] == name


def test_a_name_of_255_utf8_bytes_is_kept_exactly_and_one_more_byte_is_refused(client):
    name = "é" * 125 + "😀.t"  # 250 + 4 + 2 bytes: 256
    kept = name[:-1]  # 255

    body = upload(client, b"x", name=kept)
    refused = client.put(f"/write?name={quote(name)}", data=b"x", content_type="x/y")

    assert body["file_name"] == kept
    assert File.objects.get(pk=body["file_id"]).name == kept
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_name")


def test_body_over_the_limit_by_content_length_is_413_and_stores_nothing(client, settings, store):
    settings.MAX_UPLOAD_BYTES = 3 * C

    response = client.put("/write?name=big", data=payload(3 * C + 1), content_type="x/y")

    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert stored_keys(store) == []
    assert not File.objects.exists() and not Blob.objects.exists()


@pytest.mark.both_stores
def test_chunked_body_over_the_limit_is_413_and_deletes_chunks_already_stored(
    client, settings, store
):
    settings.MAX_UPLOAD_BYTES = 3 * C
    response = client.generic(
        "PUT",
        "/write?name=big",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(payload(6 * C)), "wsgi.input_terminated": True},
    )

    assert response.status_code == 413
    assert stored_keys(store) == []
    assert not File.objects.exists() and not Blob.objects.exists()


def test_body_shorter_than_its_content_length_is_400_and_stores_nothing(store):
    body = io.BytesIO(payload(2 * C))  # announced as 5 chunks, ends after 2

    with pytest.raises(IncompleteBody):
        write_file(["short.bin"], body, 5 * C, ANONYMOUS)

    assert stored_keys(store) == []
    assert not File.objects.exists() and not Blob.objects.exists()


def test_storage_unreachable_is_503_and_keeps_no_metadata(client, settings):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"  # discard port: nothing listens there
    settings.STORAGE_MAX_ATTEMPTS = 1

    response = client.put("/write?name=a", data=payload(3 * C), content_type="x/y")

    assert response.status_code == 503
    assert response.json()["error"] == "storage_unavailable"
    assert not File.objects.exists()
    # Whether the store holds any of its chunks cannot be known: the write's record stays, to
    # lapse, and `cleanup` then removes whatever is there.
    assert list(Blob.objects.values_list("state", flat=True)) == [Blob.State.WRITING]


def test_upload_never_holds_more_than_upload_concurrency_chunks(settings, store, monkeypatch):
    settings.UPLOAD_CONCURRENCY = 3
    settings.CHUNK_MEMORY_BYTES = 64 * C  # a fresh budget of the worker, larger than the window
    data = payload(200 * C)
    # Measured from outside: bytes read from the body, minus bytes the store has taken.
    held = HeldBytes(monkeypatch, io.BytesIO(data))

    file = write_file(["many.bin"], held.body, len(data), ANONYMOUS).file

    assert file.chunk_count == 200
    assert C <= held.peak <= 3 * C
    assert held.held == 0
    assert C <= chunk_budget().peak <= 3 * C
    assert chunk_budget().in_use == 0


class HeldBytes:
    """Bytes an upload holds: read from the body (a wrapped BytesIO) and not yet stored (the
    store's put is patched)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, body: io.BytesIO) -> None:
        self.held = self.peak = 0
        self._lock = threading.Lock()
        store = get_store()
        real_put, real_read = store.put, body.read

        def counting_read(size: int = -1) -> bytes:
            data = real_read(size)
            self._add(len(data))
            return data

        def counting_put(key: str, data: bytes, sha256_hex: str | None = None) -> None:
            real_put(key, data, sha256_hex)
            self._add(-len(data))

        monkeypatch.setattr(store, "put", counting_put)
        body.read = counting_read  # type: ignore[method-assign]
        self.body = body

    def _add(self, size: int) -> None:
        with self._lock:
            self.held += size
            self.peak = max(self.peak, self.held)
