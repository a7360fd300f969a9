"""Small files a worker has read are sent from its memory the next time (files/small_files.py):
only whole files of one small chunk, only while their metadata says they may be read, verified
each time, within the worker's budget."""

from __future__ import annotations

import hashlib

import pytest

from files.small_files import SMALL_FILE_BYTES, SmallFileCache
from files.storage import get_store
from testing.uploads import payload, upload
from testing.wsgi_client import Trace, call_wsgi, wsgi_app

pytestmark = pytest.mark.django_db


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_least_recently_read_go_first_once_the_budget_is_full():
    cache = SmallFileCache(limit=3000)
    for name in ("a", "b", "c"):
        cache.put(name, digest(name.encode() * 1000), name.encode() * 1000)

    assert cache.get("a", digest(b"a" * 1000)) == b"a" * 1000  # a is now the most recent
    cache.put("d", digest(b"d" * 1000), b"d" * 1000)

    assert cache.get("b", digest(b"b" * 1000)) is None
    assert [cache.get(name, digest(name.encode() * 1000)) is not None for name in "acd"] == [
        True,
        True,
        True,
    ]
    assert cache.size == 3000


def test_an_entry_is_only_taken_for_the_hash_it_was_kept_under():
    cache = SmallFileCache(limit=10_000)
    cache.put("chunks/x/0", digest(b"old"), b"old")

    assert cache.get("chunks/x/0", digest(b"new")) is None
    assert cache.get("chunks/x/0", digest(b"old")) == b"old"


def test_bytes_that_no_longer_match_their_hash_are_not_sent():
    cache = SmallFileCache(limit=10_000)
    cache.put("chunks/x/0", digest(b"right"), b"wrong")  # as if memory were damaged

    assert cache.get("chunks/x/0", digest(b"right")) is None


def store_reads(monkeypatch) -> list[str]:
    """The keys the store is asked for from now on."""
    asked: list[str] = []
    store = get_store()
    original = store.get

    def counting(key, *args, **kwargs):
        asked.append(key)
        return original(key, *args, **kwargs)

    monkeypatch.setattr(store, "get", counting)
    return asked


@pytest.mark.both_stores
def test_a_small_file_read_again_comes_from_memory(spans, store, monkeypatch):
    data = payload(1024)
    file_id = upload(wsgi_app, data, "small.txt")["file_id"]
    asked = store_reads(monkeypatch)

    first = call_wsgi("GET", f"/read/{file_id}")
    spans.clear()
    second = call_wsgi("GET", f"/read/{file_id}")

    assert first.body == second.body == data
    assert len(asked) == 1
    download = Trace.of(spans, second).one("download_chunk_0")
    assert download.attributes["chunk.from_memory"] is True
    assert Trace.of(spans, second).children(download) == []  # no store request beneath


def test_a_trashed_small_file_is_not_read_from_memory(client, store):
    data = payload(1024)
    file_id = upload(client, data, "small.txt")["file_id"]
    assert client.get(f"/read/{file_id}").status_code == 200

    assert client.delete(f"/files/{file_id}").status_code == 204

    assert client.get(f"/read/{file_id}").status_code == 404


@pytest.mark.parametrize(
    ("size", "cached"), [(SMALL_FILE_BYTES, True), (SMALL_FILE_BYTES + 1, False)]
)
def test_only_files_of_one_small_chunk_are_kept(client, store, monkeypatch, settings, size, cached):
    settings.CHUNK_SIZE = SMALL_FILE_BYTES  # the larger file is two chunks
    file_id = upload(client, payload(size), "file.bin")["file_id"]
    asked = store_reads(monkeypatch)

    for _ in range(2):
        response = client.get(f"/read/{file_id}")
        assert b"".join(response.streaming_content) == payload(size)

    assert len(asked) == (1 if cached else 2 * 2)  # else each read asks for both chunks


def test_a_range_of_a_small_file_is_read_from_the_store(client, store, monkeypatch):
    file_id = upload(client, payload(1024), "small.txt")["file_id"]
    client.get(f"/read/{file_id}")
    asked = store_reads(monkeypatch)

    response = client.get(f"/read/{file_id}", HTTP_RANGE="bytes=10-19")

    assert b"".join(response.streaming_content) == payload(1024)[10:20]
    assert len(asked) == 1


def test_the_cache_can_be_turned_off(client, store, monkeypatch, settings):
    settings.SMALL_FILE_CACHE_BYTES = 0
    file_id = upload(client, payload(1024), "small.txt")["file_id"]
    asked = store_reads(monkeypatch)

    for _ in range(2):
        assert client.get(f"/read/{file_id}").status_code == 200

    assert len(asked) == 2
