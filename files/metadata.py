"""A file's metadata (its File row and chunk list) as the operations see it, read through the cache.

A cache hit answers without touching the database. Entries are plain dicts and tuples, not
pickled model instances, so an entry written by one release is still readable by the next. A
deleted file leaves a tombstone in the shared cache, so every worker answers 404 at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache

from files import spans
from files.models import Chunk, File
from files.spans import tracer
from files.storage import chunk_key
from labdropbox.api.callers import Caller
from labdropbox.api.errors import FileNotFound
from metrics.registry import CACHE_LOOKUPS, labelled

# Bump when the cached shape changes: old entries are then simply never read again.
CACHE_VERSION = 3
TOMBSTONE = {"deleted": True}


@dataclass(frozen=True)
class ChunkMeta:
    index: int
    size: int
    sha256: str
    key: str


@dataclass(frozen=True)
class FileMeta:
    id: uuid.UUID
    name: str
    size: int
    sha256: str
    created_at: datetime
    chunks: tuple[ChunkMeta, ...]
    owner_id: int | None

    @classmethod
    def from_model(cls, file: File, chunks: list[Chunk]) -> FileMeta:
        return cls(
            id=file.id,
            name=file.name,
            size=file.size,
            sha256=file.sha256,
            created_at=file.created_at,
            owner_id=file.owner_id,
            chunks=tuple(
                ChunkMeta(chunk.index, chunk.size, chunk.sha256, chunk.key) for chunk in chunks
            ),
        )

    def to_cache(self) -> dict[str, Any]:
        # A chunk's key is only spelled out when it is not the usual chunks/{file_id}/{index}
        # (a file concatenated from resumable uploads): entries stay small.
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat(),
            "owner": self.owner_id,
            "chunks": [
                (chunk.size, chunk.sha256)
                if chunk.key == chunk_key(self.id, chunk.index)
                else (chunk.size, chunk.sha256, chunk.key)
                for chunk in self.chunks
            ],
        }

    @classmethod
    def from_cache(cls, file_id: uuid.UUID, entry: dict[str, Any]) -> FileMeta:
        return cls(
            id=file_id,
            name=entry["name"],
            size=entry["size"],
            sha256=entry["sha256"],
            created_at=datetime.fromisoformat(entry["created_at"]),
            owner_id=entry["owner"],
            chunks=tuple(
                ChunkMeta(index, cached[0], cached[1], (*cached, chunk_key(file_id, index))[2])
                for index, cached in enumerate(entry["chunks"])
            ),
        )

    @property
    def span_attributes(self) -> dict[str, str | int]:
        return spans.file_attributes(self.id, self.name, self.size, len(self.chunks))


def parse_file_id(raw: str) -> uuid.UUID:
    """The id in a URL, or FileNotFound: an id that is not a UUID names no file."""
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise FileNotFound(raw) from None


def cache_key(file_id: uuid.UUID) -> str:
    return f"file-meta:{file_id}"


def get_file_meta(raw_id: str) -> FileMeta:
    """The file's metadata: from the cache, else from the database (then cached)."""
    file_id = parse_file_id(raw_id)
    with tracer.start_as_current_span(spans.CACHE_LOOKUP) as span:
        entry = cache.get(cache_key(file_id), version=CACHE_VERSION)
        span.set_attribute("cache.hit", entry is not None)
    labelled(CACHE_LOOKUPS, "miss" if entry is None else "hit").inc()
    if entry == TOMBSTONE:
        raise FileNotFound(str(file_id))
    if entry is not None:
        return FileMeta.from_cache(file_id, entry)
    with tracer.start_as_current_span(spans.DB_LOOKUP):
        meta = load_file_meta(file_id)
        # add(), not set(): a tombstone that a delete wrote meanwhile must win.
        cache.add(cache_key(file_id), meta.to_cache(), version=CACHE_VERSION)
    return meta


def get_visible_file_meta(raw_id: str, caller: Caller) -> FileMeta:
    """The file's metadata if the caller may see the file; FileNotFound otherwise, as if it did
    not exist (another user's file is not even revealed to exist)."""
    meta = get_file_meta(raw_id)
    if not caller.may_access(meta.owner_id):
        raise FileNotFound(raw_id)
    return meta


def load_file_meta(file_id: uuid.UUID) -> FileMeta:
    """The file's metadata straight from the database, bypassing the cache."""
    try:
        file = File.objects.get(pk=file_id)
    except File.DoesNotExist:
        raise FileNotFound(str(file_id)) from None
    return FileMeta.from_model(file, list(file.chunks.order_by("index")))


def drop_cached_meta(file_id: uuid.UUID) -> None:
    """After a write: no stale entry can exist for a new id, but a tombstone might."""
    cache.delete(cache_key(file_id), version=CACHE_VERSION)


def mark_deleted_in_cache(file_id: uuid.UUID) -> None:
    """After a delete: every worker answers 404 at once, and a read that looked the file up
    just before the delete cannot put it back (get_file_meta only adds)."""
    cache.set(cache_key(file_id), TOMBSTONE, version=CACHE_VERSION)
