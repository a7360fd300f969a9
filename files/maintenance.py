"""Checking and tidying the chunk store: `manage.py verify`, `manage.py cleanup` and the admin's
"verify integrity" action all run these functions."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from accounts.models import Reservation
from files import spans
from files.buffers import chunk_budget
from files.io_pool import map_bounded
from files.metadata import FileMeta, load_file_meta
from files.models import Chunk, File, Upload
from files.pipeline.fetch import Piece, fetch_piece, plan_pieces
from files.spans import tracer
from files.storage import CHUNK_PREFIX, ChunkStore, StoredObject, chunk_key, get_store
from labdropbox.api.errors import ChunkCorrupt, ChunkNotFound

Item = TypeVar("Item")


def human_size(size: int) -> str:
    return filesizeformat(size).replace("\xa0", " ")


# --- verify ------------------------------------------------------------------------------------


def problem_with_piece(store: ChunkStore, piece: Piece) -> str | None:
    """What is wrong with one chunk object, or None."""
    try:
        with chunk_budget().holding(piece.length, owner=object()):
            fetch_piece(store, piece)
    except ChunkNotFound:
        return f"chunk {piece.index} is missing ({piece.key})"
    except ChunkCorrupt as exc:
        return f"chunk {piece.index} is corrupt: {exc}"
    return None


def verify_file(meta: FileMeta, store: ChunkStore | None = None) -> list[str]:
    """Re-read every chunk of a file and check its size and SHA-256; the problems found."""
    store = store or get_store()
    with tracer.start_as_current_span(spans.VERIFY_FILE, attributes=meta.span_attributes):
        problems = []
        if [chunk.index for chunk in meta.chunks] != list(range(len(meta.chunks))):
            problems.append("chunk rows are not numbered 0..n-1")
        if sum(chunk.size for chunk in meta.chunks) != meta.size:
            problems.append("chunk sizes do not add up to the file size")
        found = map_bounded(
            lambda piece: problem_with_piece(store, piece),
            plan_pieces(meta),
            settings.READ_CONCURRENCY,
        )
        problems.extend(problem for problem in found if problem)
        return problems


def verify_files(file_ids: Iterable[uuid.UUID]) -> Iterator[tuple[FileMeta, list[str]]]:
    store = get_store()
    for file_id in file_ids:
        meta = load_file_meta(file_id)
        yield meta, verify_file(meta, store)


# --- cleanup -----------------------------------------------------------------------------------


@dataclass
class Orphan:
    """The chunk objects under chunks/{id}/ of an upload that was never committed."""

    file_id: str
    objects: list[StoredObject] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(item.size for item in self.objects)

    @property
    def newest(self) -> datetime:
        return max(item.modified for item in self.objects)


@dataclass
class Scan:
    orphans: list[Orphan] = field(default_factory=list)
    young: int = 0  # uploads with no metadata yet but recent objects: maybe still in flight
    committed: int = 0


def file_id_of_key(key: str) -> str:
    """chunks/{id}/{index} -> id"""
    return key[len(CHUNK_PREFIX) :].split("/", 1)[0]


def ids_in_use(candidates: list[str]) -> set[str]:
    """The ids whose objects something needs: a committed file's own, the parts of a file
    concatenated from resumable uploads, and resumable uploads (until they expire)."""
    valid = []
    for candidate in candidates:
        try:
            valid.append(uuid.UUID(candidate))
        except ValueError:
            continue  # not an id: nothing can own it
    found = [
        File.objects.filter(id__in=valid).values_list("id", flat=True),
        Chunk.objects.filter(source_id__in=valid).values_list("source_id", flat=True).distinct(),
        Upload.objects.filter(id__in=valid).values_list("id", flat=True),
    ]
    return {str(owner) for query in found for owner in query}


def scan_orphans(store: ChunkStore, grace: timedelta, now: datetime | None = None) -> Scan:
    """Find chunk objects that belong to no committed file and have been idle for `grace`.

    An upload writes its chunks before its metadata, so objects without metadata may belong to
    an upload still in flight: an id whose newest object is younger than `grace` is left alone,
    however old its first chunks are (a long upload keeps writing new ones).
    """
    now = now or datetime.now(UTC)
    scan = Scan()
    # Stores list keys in order, so each id's objects arrive together.
    groups = (
        Orphan(file_id, list(objects))
        for file_id, objects in itertools.groupby(
            store.list(CHUNK_PREFIX), lambda o: file_id_of_key(o.key)
        )
    )
    for batch in _batched(groups, 500):
        committed = ids_in_use([group.file_id for group in batch])
        for group in batch:
            if group.file_id in committed:
                scan.committed += 1
            elif now - group.newest < grace:
                scan.young += 1
            else:
                scan.orphans.append(group)
    return scan


def delete_orphan(store: ChunkStore, orphan: Orphan) -> list[str]:
    """Delete an orphan's objects unless its upload got committed since; the keys that failed."""
    if ids_in_use([orphan.file_id]):
        return []
    return store.delete_many(item.key for item in orphan.objects)


# --- expired resumable uploads ------------------------------------------------------------------


def expired_uploads(now: datetime | None = None) -> list[Upload]:
    """Uploads nobody has written to for UPLOAD_EXPIRY_HOURS: unfinished ones, and the records
    of finished ones (whose files stay)."""
    now = now or datetime.now(UTC)
    expired = Upload.objects.filter(expires_at__lte=now).exclude(  # parts a live final awaits
        final__completed_at=None, final__expires_at__gt=now
    )
    return list(expired.order_by("expires_at"))


def remove_expired_upload(store: ChunkStore, upload: Upload) -> list[str]:
    """Delete an expired upload's row, and its objects unless a file uses them (its own file,
    or one concatenated from it); the keys that failed."""
    Upload.objects.filter(pk=upload.id).delete()
    its_file = File.objects.filter(pk=upload.id).exists()
    if its_file or Chunk.objects.filter(source_id=upload.id).exists():
        return []
    return store.delete_many(chunk_key(upload.id, index) for index in range(upload.chunk_count + 1))


def remove_lapsed_reservations(now: datetime | None = None) -> int:
    """Quota reservations of /write uploads whose worker died mid-way: they stopped counting
    when they lapsed; their rows go now. How many went."""
    lapsed = Reservation.objects.filter(upload=None, expires_at__lte=now or datetime.now(UTC))
    return lapsed.delete()[0]


def _batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
