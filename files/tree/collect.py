"""Content that nothing needs any more goes, and only then.

A blob is needed while a version points at it — a file's current one, an older one, or one of a
file in the trash. When a purge, the trash's or the versions' retention, or a failed write removes
references, `release_blobs` runs inside the same transaction, after them: it locks the blobs,
reads (with a locking read, which sees everything committed) which ones are still referenced,
and deletes the rows of the others. Every operation that adds a reference to a blob (a copy, a
restored version) locks the blob's row first and fails if it is gone, so the two cannot cross:
whichever holds the lock second sees what the first did. The chunk objects of the deleted blobs
are removed after the commit (`delete_released`); what cannot be removed then, `cleanup` finds,
since no record covers it any more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from files.models import Blob, Chunk, Version
from files.storage import delete_chunk_objects, get_store
from labdropbox.api.errors import VersionNotFound

# Blobs released a statement at a time (SQLite takes at most 32,766 parameters a statement).
BATCH = 500


def release_blobs(blob_ids: Iterable[uuid.UUID]) -> list[str]:
    """Inside the transaction that removed references to these blobs: delete the ones nothing
    references now; the keys of their chunk objects, to delete once that transaction commits."""
    wanted = sorted(set(blob_ids))  # locked in one order by everyone: no deadlock
    keys: list[str] = []
    for start in range(0, len(wanted), BATCH):  # a database takes only so many parameters
        keys += release_batch(wanted[start : start + BATCH])
    return keys


def release_batch(blob_ids: list[uuid.UUID]) -> list[str]:
    locked = set(
        Blob.objects.select_for_update().filter(pk__in=blob_ids).values_list("pk", flat=True)
    )
    still_needed = set(
        Version.objects.select_for_update()
        .filter(blob_id__in=locked)
        .values_list("blob_id", flat=True)
    )
    unneeded = locked - still_needed
    if not unneeded:
        return []
    keys = [
        chunk.key
        for chunk in Chunk.objects.filter(blob_id__in=unneeded).order_by("blob_id", "index")
    ]
    Chunk.objects.filter(blob_id__in=unneeded).delete()
    Blob.objects.filter(pk__in=unneeded).delete()
    return keys


def delete_released(owner: object, keys: list[str]) -> None:
    """After the commit: the released blobs' objects (what fails is left for `cleanup`)."""
    if keys:
        delete_chunk_objects(get_store(), owner, keys)


def hold_blob(blob_id: uuid.UUID) -> Blob:
    """Lock a blob before adding a reference to it (a copy, a restored version):
    VersionNotFound if a purge or a retention removed it meanwhile."""
    blob = Blob.objects.select_for_update().filter(pk=blob_id).first()
    if blob is None:
        raise VersionNotFound("its content has just been removed")
    return blob
