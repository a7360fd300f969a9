"""A resumable upload in progress is one Upload row and one UploadChunk row per chunk stored so
far; its row also covers its chunk objects (chunks/{upload_id}/…) until its blob is committed."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from files.storage import chunk_key


class Upload(models.Model):
    """A resumable (tus) upload. Its bytes go into chunk objects as they arrive and its progress
    is kept here, so that any worker of any instance can continue it; its id becomes the file's.

    The bytes [0, offset) are stored: `chunk_count` whole chunks (their UploadChunk rows), then
    the partial last chunk's first `offset - chunk_count * chunk_size` bytes at the start of
    object `chunk_count` (checked against `tail_sha256`). `hash_state` is the SHA-256 of those
    bytes, resumable (files/sha256_state.py).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    metadata = models.TextField(blank=True, help_text="Upload-Metadata as the client sent it")
    length = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="bytes; empty while the client defers it"
    )
    offset = models.PositiveBigIntegerField(default=0, help_text="bytes stored")
    chunk_size = models.PositiveBigIntegerField()
    chunk_count = models.PositiveIntegerField(default=0)
    tail_sha256 = models.CharField(max_length=64, blank=True)
    hash_state = models.BinaryField()
    # "", "partial", or "final;<url> <url>…" as the client sent it (echoed on HEAD).
    concat = models.TextField(blank=True)
    final = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="parts"
    )
    part_order = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField("last activity", default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Who may write to it now: a PATCH takes the lock for a lease it keeps renewing, so a
    # worker that dies with it frees it when the lease ends, not at a restart.
    lock_token = models.CharField(max_length=32, blank=True)
    lock_expires_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="uploads",
    )
    # Where the file goes (the `path` metadata, else the root and the `filename`), and, once
    # committed, the file it made or gave a new version (its version has the upload's id).
    path = models.TextField(blank=True)
    file = models.ForeignKey(
        "files.Entry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_partial(self) -> bool:
        return self.concat == "partial"

    @property
    def is_final(self) -> bool:
        return self.concat.startswith("final")

    @property
    def stored_in_whole_chunks(self) -> int:
        return self.chunk_count * self.chunk_size

    @property
    def tail_size(self) -> int:
        """Bytes of the partial last chunk (0 once the last chunk, short or not, is recorded)."""
        return max(0, self.offset - self.stored_in_whole_chunks)


class UploadChunk(models.Model):
    pk = models.CompositePrimaryKey("upload_id", "index")
    upload = models.ForeignKey(
        Upload, on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    index = models.PositiveIntegerField(db_column="chunk_index")
    size = models.PositiveBigIntegerField(help_text="bytes")
    sha256 = models.CharField("SHA-256", max_length=64)

    class Meta:
        ordering = ["upload_id", "index"]

    def __str__(self) -> str:
        return chunk_key(self.upload_id, self.index)
