"""A blob's record, from before its first chunk is stored to its commit: what keeps `cleanup`
from ever collecting the objects of a write in flight, whatever its grace.

A write makes its blob (WRITING) before storing anything under its id, and renews the blob's
lease as it goes. Its commit turns the blob STORED only if it is still WRITING: if `cleanup`
removed it meanwhile (the write had stopped renewing it: a stalled worker), the commit fails and
nothing is answered as stored. A resumable upload's objects are covered by its Upload row until
its commit makes its blob, STORED at once, in the same transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from files.models import Blob, Chunk
from labdropbox.api.errors import WriteAbandoned

log = logging.getLogger(__name__)

# A writer renews its blob's lease at least this often while its chunks are stored (a write
# whose client is silent past UPLOAD_IDLE_TIMEOUT_SECONDS has failed long before).
WRITE_LEASE = timedelta(minutes=10)


def start_writing() -> Blob:
    """The record of a write about to store chunks under a new id."""
    return Blob.objects.create(
        id=uuid.uuid4(), state=Blob.State.WRITING, lease_expires_at=timezone.now() + WRITE_LEASE
    )


class WritingLease:
    """A write's hold on its blob, pushed back once half of it is gone."""

    def __init__(self, blob_id: uuid.UUID) -> None:
        self.blob_id = blob_id
        self.renewed = time.monotonic()

    def renew(self) -> None:
        """Push the lease back if half of it is gone; WriteAbandoned if the blob was collected."""
        if time.monotonic() - self.renewed < WRITE_LEASE.total_seconds() / 2:
            return
        self.renewed = time.monotonic()
        writing = Blob.objects.filter(pk=self.blob_id, state=Blob.State.WRITING)
        if not writing.update(lease_expires_at=timezone.now() + WRITE_LEASE):
            raise WriteAbandoned()


def commit_written(
    blob_id: uuid.UUID, size: int, sha256: str, chunks: list[tuple[int, str]]
) -> Blob:
    """Inside the commit's transaction: the write's blob is STORED with its chunk rows, or
    WriteAbandoned if it is gone."""
    writing = Blob.objects.filter(pk=blob_id, state=Blob.State.WRITING)
    done = writing.update(
        state=Blob.State.STORED,
        size=size,
        sha256=sha256,
        chunk_count=len(chunks),
        lease_expires_at=None,
    )
    if not done:
        raise WriteAbandoned()
    add_chunks(blob_id, chunks)
    return Blob.objects.get(pk=blob_id)


def add_chunks(blob_id: uuid.UUID, chunks: Iterable[tuple[int, str]]) -> None:
    Chunk.objects.bulk_create(
        [
            Chunk(blob_id=blob_id, index=index, size=size, sha256=digest)
            for index, (size, digest) in enumerate(chunks)
        ],
        batch_size=1000,
    )


def forget_unfinished(blob_id: uuid.UUID, objects_left: list[str]) -> None:
    """A write failed and deleted what it stored: its record goes too. If some objects could
    not be deleted, the record stays with its lease ended now — the writer gives its objects
    up, and `cleanup` removes them and it."""
    if objects_left:
        give_up(blob_id)
        return
    try:
        Blob.objects.filter(pk=blob_id, state=Blob.State.WRITING).delete()
    except DatabaseError as exc:  # the database is what failed: the lease will lapse by itself
        log.warning("blob %s: its record is left to lapse: %s", blob_id, exc)


def give_up(blob_id: uuid.UUID) -> None:
    """End a write's lease now, if it is still WRITING (a committed blob is left alone):
    `cleanup` then removes the record and the objects it covered."""
    try:
        writing = Blob.objects.filter(pk=blob_id, state=Blob.State.WRITING)
        writing.update(lease_expires_at=timezone.now())
    except DatabaseError as exc:  # the database is what failed: the lease will lapse by itself
        log.warning("blob %s: its record is left to lapse: %s", blob_id, exc)


def lapsed_writes() -> list[uuid.UUID]:
    """Blobs whose writer stopped renewing them: taken for dead."""
    lapsed = Blob.objects.filter(state=Blob.State.WRITING, lease_expires_at__lte=timezone.now())
    return list(lapsed.values_list("pk", flat=True))


def forget_lapsed(blob_id: uuid.UUID) -> bool:
    """Remove a lapsed write's record (one statement, only if it is still lapsed): True if it
    went — its objects are then no one's."""
    lapsed = Blob.objects.filter(
        pk=blob_id, state=Blob.State.WRITING, lease_expires_at__lte=timezone.now()
    )
    return bool(lapsed.delete()[0])
