"""A stored file is one File row and one Chunk row per chunk object; a resumable upload in
progress is one Upload row and one UploadChunk row per chunk stored so far.

The tables are shaped for TiDB as much as for SQLite and MySQL: primary keys are random UUIDs, so
inserts spread over all regions instead of piling onto the last one, and chunk rows have the
primary key (owner id, chunk_index), so an owner's chunk rows sit together in the clustered index
and are read back with one range scan.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from files.spans import file_attributes
from files.storage import chunk_key


class File(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(help_text="bytes")
    chunk_count = models.PositiveIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # None: no one's (stored through the open API, or before files had owners): staff only
    # once the API is closed. A deleted user's files become no one's, not gone.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="files",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="file_owner_listing")]

    def __str__(self) -> str:
        return self.name

    @property
    def span_attributes(self) -> dict[str, str | int]:
        return file_attributes(self.id, self.name, self.size, self.chunk_count)


class Chunk(models.Model):
    pk = models.CompositePrimaryKey("file_id", "index")
    # The primary key starts with file_id, so it already indexes this column.
    file = models.ForeignKey(File, on_delete=models.CASCADE, related_name="chunks", db_index=False)
    index = models.PositiveIntegerField(db_column="chunk_index")
    size = models.PositiveBigIntegerField(help_text="bytes")
    sha256 = models.CharField("SHA-256", max_length=64)
    # A file concatenated from resumable uploads keeps its parts' objects where they are:
    # chunks/{source_id}/{source_index} (empty: chunks/{file_id}/{index}).
    source_id = models.UUIDField(null=True, blank=True, db_index=True)
    source_index = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["file_id", "index"]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        if self.source_id is not None and self.source_index is not None:
            return chunk_key(self.source_id, self.source_index)
        return chunk_key(self.file_id, self.index)


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


# A link serves at most this many times its downloads' bytes, however they are cut into ranges:
# room for aria2c, whose first request (for the whole file) is charged until it is closed.
BYTE_CEILING_PER_DOWNLOAD = 3


class ShareLink(models.Model):
    """A link that reads one file without a token: /s/{token}. Only the SHA-256 of the token is
    kept (like an API token's), so a database leak leaks no working link.

    `downloads` counts responses that start at the file's first byte, so a download resumed or
    split into ranges (curl -C -, aria2c -x8) counts once. Ranges from further on count only in
    `bytes_served`: past three times `max_downloads` files' worth, the link is spent whatever the
    count."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.ForeignKey(File, on_delete=models.CASCADE, related_name="links")
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField("SHA-256", max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never")
    max_downloads = models.PositiveIntegerField(null=True, blank=True, help_text="empty: any")
    downloads = models.PositiveIntegerField(default=0, editable=False)
    bytes_served = models.PositiveBigIntegerField(default=0, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "share link"

    def __str__(self) -> str:
        return f"/s/{self.prefix}…"

    @property
    def byte_ceiling(self) -> int:
        """The bytes it may serve in all, if it has a max_downloads (within what a 64-bit
        column holds)."""
        ceiling = BYTE_CEILING_PER_DOWNLOAD * (self.max_downloads or 0) * max(self.file.size, 1)
        return min(ceiling, 2**62)

    @property
    def is_spent(self) -> bool:
        """Nothing more may be sent: its byte ceiling is reached. (With its downloads all
        started, a download may still be resumed.)"""
        return self.max_downloads is not None and self.bytes_served >= self.byte_ceiling
