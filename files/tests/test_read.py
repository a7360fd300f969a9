from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from files.buffers import chunk_budget
from files.operations.read import FileRead
from files.storage import chunk_key, get_store
from labdropbox.api.callers import SERVICE
from labdropbox.api.errors import ChunkCorrupt
from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import download, payload, upload

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def test_read_sends_length_type_and_disposition(client):
    file_id = upload(client, payload(C + 3), name="report.pdf")["file_id"]

    response = client.get(f"/read/{file_id}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == str(C + 3)
    assert response["Content-Disposition"] == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert b"".join(response.streaming_content) == payload(C + 3)


@pytest.mark.parametrize(
    ("name", "disposition"),
    [
        (
            'say "hi".txt',
            "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt",
        ),
        ("a\\b.txt", "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%5Cb.txt"),
        ("café.txt", "attachment; filename=\"cafe.txt\"; filename*=UTF-8''caf%C3%A9.txt"),
        ("日本.txt", "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        (
            "\uff0e\uff0e\uff0fx",  # fullwidth "../", which NFKD turns into ASCII
            "attachment; filename=\"_x\"; filename*=UTF-8''%EF%BC%8E%EF%BC%8E%EF%BC%8Fx",
        ),
        (".bashrc", "attachment; filename=\"bashrc\"; filename*=UTF-8''.bashrc"),
        ("...", "attachment; filename=\"download\"; filename*=UTF-8''..."),
    ],
)
def test_disposition_is_safe_for_any_name(client, name, disposition):
    file_id = upload(client, b"x", name=name)["file_id"]

    response = client.get(f"/read/{file_id}")

    assert response["Content-Disposition"] == disposition
    b"".join(response.streaming_content)


@pytest.mark.parametrize("file_id", [str(uuid.uuid4()), "not-a-uuid", "1234", "%20"])
def test_unknown_or_malformed_id_is_404_json(client, file_id):
    response = client.get(f"/read/{file_id}")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_second_read_makes_no_database_query(client):
    file_id = upload(client, payload(3 * C))["file_id"]

    with CaptureQueriesContext(connection) as first:
        assert download(client, file_id) == payload(3 * C)
    with CaptureQueriesContext(connection) as second:
        assert download(client, file_id) == payload(3 * C)

    assert len(first.captured_queries) >= 1  # the miss went to the database
    assert second.captured_queries == []


@pytest.mark.both_stores
def test_missing_first_chunk_is_502_before_any_byte(client, store):
    file_id = upload(client, payload(3 * C))["file_id"]
    store.delete_many([chunk_key(file_id, 0)])

    response = client.get(f"/read/{file_id}")

    assert response.status_code == 502
    assert response.json()["error"] == "chunk_missing"


@pytest.mark.both_stores
def test_overwritten_first_chunk_is_502_before_any_byte(client, store):
    file_id = upload(client, payload(3 * C))["file_id"]
    store.put(chunk_key(file_id, 0), payload(C, seed=99))  # same size, other bytes

    response = client.get(f"/read/{file_id}")

    assert response.status_code == 502
    assert response.json()["error"] == "chunk_corrupt"


@pytest.mark.both_stores
@pytest.mark.parametrize("replacement", [b"short", payload(C, seed=5)], ids=["short", "same-size"])
def test_overwritten_later_chunk_cuts_the_body_short(client, store, replacement):
    data = payload(6 * C)
    file_id = upload(client, data)["file_id"]
    store.put(chunk_key(file_id, 4), replacement)

    response = client.get(f"/read/{file_id}")
    assert response.status_code == 200  # the headers went out before chunk 4 was fetched
    received = b""
    with pytest.raises(ChunkCorrupt):
        for piece in response.streaming_content:
            received += piece

    assert received == data[: 4 * C]  # the good chunks, then the cut
    assert len(received) < int(response["Content-Length"])


def test_storage_unreachable_during_read_is_503_json(client, settings):
    file_id = upload(client, payload(2 * C))["file_id"]
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.STORAGE_MAX_ATTEMPTS = 1

    response = client.get(f"/read/{file_id}")

    assert response.status_code == 503
    assert response.json()["error"] == "storage_unavailable"


def test_read_never_holds_more_than_read_concurrency_chunks(client, settings, monkeypatch):
    settings.READ_CONCURRENCY = 4
    settings.CHUNK_MEMORY_BYTES = 64 * C  # a fresh budget of the worker, larger than the window
    data = payload(200 * C)
    file_id = upload(client, data)["file_id"]
    # Measured from outside: chunks asked of the store, minus those the client has taken.
    count = HeldChunks(monkeypatch)

    with FileRead(file_id, SERVICE) as read:
        body = read.body()
    received = []
    for piece in body:
        count.taken()
        received.append(piece)
        time.sleep(0.002)  # a slow client: the window fills up while it reads
    body.close()

    assert b"".join(received) == data
    # Counted from outside when each fetch starts on the pool (it may start late), and in the
    # worker's chunk budget when it is asked for: the window fills, and never overflows.
    assert 2 <= count.peak <= 4
    assert count.held == 0
    assert chunk_budget().peak == 4 * C
    assert chunk_budget().in_use == 0


class HeldChunks:
    """Counts the chunks a read holds: fetches started (patched into the store) minus pieces the
    client has taken (the test calls taken())."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held = self.peak = 0
        self._lock = threading.Lock()
        store = get_store()
        real_get = store.get

        def counting_get(*args, **kwargs):
            with self._lock:
                self.held += 1
                self.peak = max(self.peak, self.held)
            return real_get(*args, **kwargs)

        monkeypatch.setattr(store, "get", counting_get)

    def taken(self) -> None:
        with self._lock:
            self.held -= 1


def test_redis_outage_falls_back_to_the_database(client, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    data = payload(2 * C)

    file_id = upload(client, data)["file_id"]
    assert download(client, file_id) == data
    assert download(client, file_id) == data

    ignored = [record for record in caplog.records if record.getMessage() == "Exception ignored"]
    assert ignored  # logged, not raised
    assert "Connection refused" in str(ignored[0].exc_info[1])
