"""A file's metadata as reads see it — its name, owner, and its current version's content with
the chunk list — read through the cache.

A cache hit answers without touching the database. Entries are plain dicts and tuples, not
pickled model instances, so an entry written by one release is still readable by the next. A
file that is trashed or purged leaves a tombstone in the shared cache, so every worker answers
404 at once; a change of name or version drops its entry.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

from files import spans
from files.models import Chunk, Entry, Version
from files.spans import tracer
from files.storage import chunk_key
from labdropbox.api.callers import Caller
from labdropbox.api.errors import FileNotFound
from metrics.registry import CACHE_LOOKUPS, labelled

# Bump when the cached shape changes: old entries are then simply never read again.
CACHE_VERSION = 4
TOMBSTONE = {"deleted": True}
# After a file changes (a new version, a move, a restore), its entry says "ask the database" for
# this long: a read that looked the file up just before the change cannot put the old answer
# back (look_up only adds), and after it the cache fills again.
RELOOK = {"relook": True}
RELOOK_SECONDS = 10


@dataclass(frozen=True)
class ChunkMeta:
    index: int
    size: int
    sha256: str
    key: str


@dataclass(frozen=True)
class FileMeta:
    """A file as one of its versions has it (the current one, unless a version was asked for).
    `id` is what was looked up: the file's id, or a version's id (an upload that overwrote)."""

    id: uuid.UUID
    file_id: uuid.UUID
    version_id: uuid.UUID
    blob_id: uuid.UUID
    name: str
    size: int
    sha256: str
    modified_at: datetime
    chunks: tuple[ChunkMeta, ...]
    owner_id: int | None

    @classmethod
    def from_version(cls, looked_up: uuid.UUID, file: Entry, version: Version) -> FileMeta:
        blob = version.blob
        rows = Chunk.objects.filter(blob_id=blob.id).order_by("index")
        return cls(
            id=looked_up,
            file_id=file.id,
            version_id=version.id,
            blob_id=blob.id,
            name=file.name,
            size=blob.size,
            sha256=blob.sha256,
            modified_at=version.created_at,
            owner_id=file.owner_id,
            chunks=tuple(ChunkMeta(c.index, c.size, c.sha256, c.key) for c in rows),
        )

    def to_cache(self) -> dict[str, Any]:
        # A chunk's key is only spelled out when it is not the usual chunks/{blob_id}/{index}
        # (a blob concatenated from resumable uploads): entries stay small.
        return {
            "file": str(self.file_id),
            "version": str(self.version_id),
            "blob": str(self.blob_id),
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "modified_at": self.modified_at.isoformat(),
            "owner": self.owner_id,
            "chunks": [
                (chunk.size, chunk.sha256)
                if chunk.key == chunk_key(self.blob_id, chunk.index)
                else (chunk.size, chunk.sha256, chunk.key)
                for chunk in self.chunks
            ],
        }

    @classmethod
    def from_cache(cls, looked_up: uuid.UUID, entry: dict[str, Any]) -> FileMeta:
        blob_id = uuid.UUID(entry["blob"])
        return cls(
            id=looked_up,
            file_id=uuid.UUID(entry["file"]),
            version_id=uuid.UUID(entry["version"]),
            blob_id=blob_id,
            name=entry["name"],
            size=entry["size"],
            sha256=entry["sha256"],
            modified_at=datetime.fromisoformat(entry["modified_at"]),
            owner_id=entry["owner"],
            chunks=tuple(
                ChunkMeta(index, cached[0], cached[1], (*cached, chunk_key(blob_id, index))[2])
                for index, cached in enumerate(entry["chunks"])
            ),
        )

    @property
    def span_attributes(self) -> dict[str, str | int]:
        return spans.file_attributes(self.file_id, self.name, self.size, len(self.chunks))


def parse_file_id(raw: str) -> uuid.UUID:
    """The id in a URL, or FileNotFound: an id that is not a UUID names no file."""
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise FileNotFound(raw) from None


def cache_key(file_id: uuid.UUID) -> str:
    return f"file-meta:{file_id}"


@dataclass(frozen=True)
class Lookup:
    meta: FileMeta
    from_cache: bool


def look_up(raw_id: str) -> Lookup:
    """The file's (or version's) metadata: from the cache, else from the database (then cached)."""
    file_id = parse_file_id(raw_id)
    with tracer.start_as_current_span(spans.CACHE_LOOKUP) as span:
        entry = cache.get(cache_key(file_id), version=CACHE_VERSION)
        if entry == RELOOK:
            entry = None
        span.set_attribute("cache.hit", entry is not None)
    labelled(CACHE_LOOKUPS, "miss" if entry is None else "hit").inc()
    if entry == TOMBSTONE:
        raise FileNotFound(str(file_id))
    if entry is not None:
        return Lookup(FileMeta.from_cache(file_id, entry), from_cache=True)
    with tracer.start_as_current_span(spans.DB_LOOKUP):
        meta = load_file_meta(file_id)
        # add(), not set(): a tombstone or a relook that a change wrote meanwhile must win.
        cache.add(cache_key(file_id), meta.to_cache(), version=CACHE_VERSION)
    return Lookup(meta, from_cache=False)


def get_file_meta(raw_id: str) -> FileMeta:
    return look_up(raw_id).meta


def get_visible_file_meta(raw_id: str, caller: Caller) -> FileMeta:
    """The file's metadata if the caller may see the file; FileNotFound otherwise, as if it did
    not exist. Found in the cache, a file the caller may not see still costs the database
    lookup a file that does not exist costs: the answer's time does not tell which it is."""
    found = look_up(raw_id)
    if not caller.may_access(found.meta.owner_id):
        if found.from_cache:
            with contextlib.suppress(FileNotFound):
                load_file_meta(found.meta.id)
        raise FileNotFound(raw_id)
    return found.meta


def load_file_meta(looked_up: uuid.UUID) -> FileMeta:
    """The live file's (or a live file's version's) metadata straight from the database."""
    file = (
        Entry.objects.select_related("current__blob")
        .filter(pk=looked_up, kind=Entry.Kind.FILE, trash=None)
        .first()
    )
    if file is not None and file.current is not None:
        return FileMeta.from_version(looked_up, file, file.current)
    version = Version.objects.select_related("blob", "file").filter(pk=looked_up).first()
    if version is not None and version.file.trash_id is None:
        return FileMeta.from_version(looked_up, version.file, version)
    raise FileNotFound(str(looked_up))


def version_meta(file: Entry, version: Version) -> FileMeta:
    """The file as an earlier version has it (`?version=`): read from the database, not cached."""
    return FileMeta.from_version(file.id, file, version)


def drop_cached_meta(file_id: uuid.UUID, changed: bool = True) -> None:
    """After a change of name or version: reads look the file up again (see RELOOK). A new
    file (not `changed`) cannot have been looked up: its entry is only cleared."""
    if changed:
        forget_cached([file_id])
    else:
        cache.delete(cache_key(file_id), version=CACHE_VERSION)


def mark_deleted_in_cache(ids: Iterable[uuid.UUID]) -> None:
    """After files (by their ids and their versions') are trashed or gone: every worker answers
    404 at once, and a read that looked one up just before cannot put it back (look_up only
    adds)."""
    cache.set_many({cache_key(looked_up): TOMBSTONE for looked_up in ids}, version=CACHE_VERSION)


def forget_cached(ids: Iterable[uuid.UUID]) -> None:
    """After files change or come back from the trash: looked up afresh (see RELOOK)."""
    relook = dict.fromkeys((cache_key(looked_up) for looked_up in ids), RELOOK)
    cache.set_many(relook, timeout=RELOOK_SECONDS, version=CACHE_VERSION)


def lookup_ids(files: QuerySet[Entry]) -> list[uuid.UUID]:
    """Every id these files are read by: theirs, and each of their versions'."""
    ids = files.values_list("pk", flat=True)
    versions = Version.objects.filter(file__in=ids).values_list("pk", flat=True)  # a subquery
    return list(set(ids).union(versions))
