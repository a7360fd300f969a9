"""Every chunk store behaves the same (the filesystem, S3, and Django storage backends), and
errors come out as our own exceptions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from files.storage import get_store
from labdropbox.api.errors import ChunkNotFound, StorageUnavailable
from testing.fixtures import point_store_at
from testing.storages import DJANGO_KINDS, on_port

pytestmark = pytest.mark.both_stores


def test_put_then_get_whole_and_ranges(store):
    store.put("chunks/a/0", b"0123456789")

    assert store.get("chunks/a/0") == b"0123456789"
    assert store.get("chunks/a/0", 3, 7) == b"3456"
    assert store.get("chunks/a/0", 8) == b"89"


def test_put_overwrites(store):
    store.put("chunks/a/0", b"old bytes")
    store.put("chunks/a/0", b"new")

    assert store.get("chunks/a/0") == b"new"


def test_missing_object_is_chunk_not_found(store):
    with pytest.raises(ChunkNotFound):
        store.get("chunks/nothing/0")


def test_list_shows_keys_sizes_and_recent_times(store):
    store.put("chunks/a/0", b"xx")
    store.put("chunks/b/1", b"yyy")
    store.put("elsewhere/c", b"z")

    listed = sorted(store.list(), key=lambda item: item.key)

    assert [(item.key, item.size) for item in listed] == [("chunks/a/0", 2), ("chunks/b/1", 3)]
    for item in listed:
        assert abs(datetime.now(UTC) - item.modified) < timedelta(minutes=5)


def test_delete_many_deletes_and_tolerates_missing_keys(store):
    store.put("chunks/a/0", b"x")
    store.put("chunks/a/1", b"y")

    assert store.delete_many(["chunks/a/0", "chunks/a/1", "chunks/a/2"]) == []
    assert list(store.list()) == []


def test_ensure_bucket_creates_once(store, settings, store_kind, request):
    point_store_at(request, settings, store_kind, f"fresh-{uuid.uuid4().hex[:12]}")
    fresh = get_store()

    assert fresh.ensure_bucket() is True
    assert fresh.ensure_bucket() is False
    fresh.check()


def test_unreachable_store_is_storage_unavailable(store, settings, store_kind, tmp_path):
    if store_kind == "s3":
        settings.MINIO_ENDPOINT = "127.0.0.1:9"
        settings.STORAGE_MAX_ATTEMPTS = 1
    elif store_kind in DJANGO_KINDS:
        closed = on_port(settings.STORAGES["chunks"], 9)
        settings.STORAGES = {**settings.STORAGES, "chunks": closed}
    else:
        (tmp_path / "file").write_text("a file where the folder should be")
        settings.CHUNK_DIR = tmp_path / "file" / "chunks"
    broken = get_store()

    for call in (lambda: broken.put("chunks/a/0", b"x"), lambda: broken.get("chunks/a/0")):
        with pytest.raises(StorageUnavailable):
            call()
    with pytest.raises(StorageUnavailable):
        broken.check()
