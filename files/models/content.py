"""What is stored: a Blob is one content — its bytes in chunk objects, one Chunk row each — and a
Version is a file's content at one time, pointing at a blob. Versions of one file, copies of it
and restored versions share blobs; no chunk object is ever copied.

A blob is also the record that covers its chunk objects while they are being written: a /write
makes its blob (WRITING, with a lease it renews) before it stores the first chunk, and commits it
(STORED) in the transaction that gives it a version. `cleanup` never deletes the objects of a
blob that exists, in either state.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from files.storage import chunk_key


class Blob(models.Model):
    class State(models.IntegerChoices):
        WRITING = 0, "being written"
        STORED = 1, "stored"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    size = models.PositiveBigIntegerField(default=0, help_text="bytes")
    sha256 = models.CharField("SHA-256", max_length=64, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    state = models.PositiveSmallIntegerField(choices=State.choices, default=State.STORED)
    # While WRITING: the writer renews this as chunks are stored; once it has passed, the writer
    # is taken for dead, and `cleanup` removes the blob and its objects (its commit then fails).
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "lease_expires_at"], name="blob_writing_lease")]

    def __str__(self) -> str:
        return f"blob {self.id}"


class Chunk(models.Model):
    pk = models.CompositePrimaryKey("blob_id", "index")
    # The column keeps its name from when chunks belonged to files (a file's first blob has the
    # file's id): the primary key starts with it, so it already indexes this column.
    blob = models.ForeignKey(
        Blob, on_delete=models.CASCADE, related_name="chunks", db_column="file_id", db_index=False
    )
    index = models.PositiveIntegerField(db_column="chunk_index")
    size = models.PositiveBigIntegerField(help_text="bytes")
    sha256 = models.CharField("SHA-256", max_length=64)
    # A blob concatenated from resumable uploads keeps its parts' objects where they are:
    # chunks/{source_id}/{source_index} (empty: chunks/{blob_id}/{index}).
    source_id = models.UUIDField(null=True, blank=True, db_index=True)
    source_index = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["blob_id", "index"]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        if self.source_id is not None and self.source_index is not None:
            return chunk_key(self.source_id, self.source_index)
        return chunk_key(self.blob_id, self.index)


class Version(models.Model):
    """A file's content at one time. The file's current version is `File.current`; the others
    are kept until VERSION_RETENTION_DAYS after they were replaced."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.ForeignKey("files.Entry", on_delete=models.CASCADE, related_name="versions")
    # PROTECT: a blob a version needs cannot be deleted, whatever the code around it does.
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="versions")
    created_at = models.DateTimeField(default=timezone.now)
    replaced_at = models.DateTimeField(null=True, blank=True, help_text="empty: current")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["file", "-created_at"], name="version_history"),
            models.Index(fields=["replaced_at"], name="version_retention"),
        ]

    def __str__(self) -> str:
        return f"version {self.id} of {self.file_id}"
