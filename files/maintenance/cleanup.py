"""Tidying the chunk store: `manage.py cleanup` runs these.

The rule is liveness by reference. A chunk object is kept while a record covers its id — an
upload's row, a blob's (being written or stored), or chunk rows pointing at it — and every
writer makes its record before it stores a chunk (files/blobs.py). `cleanup` removes only what
no record covers, then deletes the objects after checking again. Records go by rules of their
own, never by the age of objects alone: a write's blob when its lease lapses, an upload when it
expires and no request holds its lock, content when no version needs it any more
(files/tree/collect.py), trash and versions after their retention.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from django.db.models import Q, QuerySet

from accounts.models import Reservation
from files.blobs import forget_lapsed, lapsed_writes
from files.models import Blob, Chunk, Upload
from files.storage import CHUNK_PREFIX, ChunkStore, StoredObject, chunk_key

Item = TypeVar("Item")


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


def id_of_key(key: str) -> str:
    """chunks/{id}/{index} -> id"""
    return key[len(CHUNK_PREFIX) :].split("/", 1)[0]


def ids_covered(candidates: list[str]) -> set[str]:
    """The ids whose objects a record covers: a resumable upload's, a blob's (being written, or
    stored), and the parts' of a blob concatenated from uploads.

    They are asked in the order a record moves along — an upload's row, then its blob (in the
    transaction that commits it), a part's row, then the chunk rows that point at it — so a
    commit between two of these queries is seen by one of them, never missed by both."""
    valid = []
    for candidate in candidates:
        try:
            valid.append(uuid.UUID(candidate))
        except ValueError:
            continue  # not an id: nothing can own it
    uploads = Upload.objects.filter(id__in=valid).values_list("id", flat=True)
    blobs = Blob.objects.filter(id__in=valid).values_list("id", flat=True)
    parts = Chunk.objects.filter(source_id__in=valid).values_list("source_id", flat=True)
    covered: set[uuid.UUID | None] = {*uploads, *blobs, *parts.distinct()}
    return {str(owner) for owner in covered if owner is not None}


def scan_orphans(store: ChunkStore, grace: timedelta, now: datetime | None = None) -> Scan:
    """Find chunk objects that no record covers and that have been idle for `grace`.

    Whatever this release writes is recorded before its first chunk is stored, so the grace only
    spares objects no record ever covered — left by an earlier release, which stored first and
    recorded after: an id whose newest object is younger than `grace` is left alone.
    """
    now = now or datetime.now(UTC)
    scan = Scan()
    # Stores list keys in order, so each id's objects arrive together.
    groups = (
        Orphan(file_id, list(objects))
        for file_id, objects in itertools.groupby(
            store.list(CHUNK_PREFIX), lambda o: id_of_key(o.key)
        )
    )
    for batch in _batched(groups, 500):
        committed = ids_covered([group.file_id for group in batch])
        for group in batch:
            if group.file_id in committed:
                scan.committed += 1
            elif now - group.newest < grace:
                scan.young += 1
            else:
                scan.orphans.append(group)
    return scan


def delete_orphan(store: ChunkStore, orphan: Orphan) -> list[str]:
    """Delete an orphan's objects unless a record covers them now; the keys that failed."""
    if ids_covered([orphan.file_id]):
        return []
    return store.delete_many(item.key for item in orphan.objects)


# --- expired resumable uploads ------------------------------------------------------------------


def expired(now: datetime) -> QuerySet[Upload]:
    """Uploads nobody has written to for UPLOAD_EXPIRY_HOURS — unfinished ones, and the records
    of finished ones (whose files stay) — but never one a request is writing to now (its lock's
    lease is live), nor a part a live final upload awaits."""
    unlocked = Q(lock_token="") | Q(lock_expires_at__lte=now) | Q(lock_expires_at=None)
    return (
        Upload.objects.filter(expires_at__lte=now)
        .filter(unlocked)
        .exclude(final__completed_at=None, final__expires_at__gt=now)
    )


def expired_uploads(now: datetime | None = None) -> list[Upload]:
    return list(expired(now or datetime.now(UTC)).order_by("expires_at"))


def remove_expired_upload(store: ChunkStore, upload: Upload) -> list[str]:
    """Delete an expired upload's row — in one statement that checks it is still expired and
    unlocked, so a PATCH that began meanwhile keeps it — then its objects, unless its blob or a
    blob concatenated from it covers them; the keys that failed."""
    if not expired(datetime.now(UTC)).filter(pk=upload.id).delete()[0]:
        return []
    if ids_covered([str(upload.id)]):
        return []
    return store.delete_many(chunk_key(upload.id, index) for index in range(upload.chunk_count + 1))


def remove_lapsed_writes() -> int:
    """The records of writes whose lease lapsed (their worker died or stalled): removed, so
    that their objects are no one's; how many. Their commits, if they ever come, fail."""
    return sum(forget_lapsed(blob_id) for blob_id in lapsed_writes())


def remove_lapsed_reservations(now: datetime | None = None) -> int:
    """Quota reservations of /write uploads whose worker died mid-way: they stopped counting
    when they lapsed; their rows go now. How many went."""
    lapsed = Reservation.objects.filter(upload=None, expires_at__lte=now or datetime.now(UTC))
    return lapsed.delete()[0]


def _batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
