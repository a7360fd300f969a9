"""A stored file is one File row and one Chunk row per chunk object.

Both tables are shaped for TiDB as much as for SQLite and MySQL: File's primary key is a random
UUID, so inserts spread over all regions instead of piling onto the last one, and Chunk's primary
key is (file_id, chunk_index), so a file's chunk rows sit together in the clustered index and are
read back with one range scan.
"""

from __future__ import annotations

import uuid

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

    class Meta:
        ordering = ["-created_at"]

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

    class Meta:
        ordering = ["file_id", "index"]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        return chunk_key(self.file_id, self.index)
