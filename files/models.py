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
        return file_span_attributes(self.id, self.name, self.size, self.chunk_count)


def file_span_attributes(
    file_id: uuid.UUID, name: str, size: int, chunk_count: int
) -> dict[str, str | int]:
    """The attributes of SPEC §5 that every file operation span carries."""
    return {
        "file.id": str(file_id),
        "file.name": name,
        "file.size": size,
        "file.chunk_count": chunk_count,
    }


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


class RecordedTrace(models.Model):
    """One trace kept by the built-in recorder (files/recorder.py), for the admin's waterfall."""

    trace_id = models.CharField(max_length=32, primary_key=True)
    name = models.CharField("operation", max_length=200)
    file_id = models.UUIDField("file", null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.FloatField("duration (ms)")
    span_count = models.PositiveIntegerField("spans")
    cache_hit = models.BooleanField(null=True)
    error = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "trace"

    def __str__(self) -> str:
        return f"{self.name} ({self.trace_id})"


class RecordedSpan(models.Model):
    # Like chunks: a trace's spans sit together in TiDB's clustered index.
    pk = models.CompositePrimaryKey("trace_id", "span_id")
    # The recorder deletes a trace's spans itself, before the trace, in one statement each:
    # a cascade would load every span into memory first.
    trace = models.ForeignKey(
        RecordedTrace, on_delete=models.DO_NOTHING, related_name="spans", db_index=False
    )
    span_id = models.CharField(max_length=16)
    parent_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)
    start_ns = models.BigIntegerField(help_text="nanoseconds since the epoch")
    end_ns = models.BigIntegerField(help_text="nanoseconds since the epoch")
    error = models.BooleanField(default=False)
    status_message = models.TextField(blank=True)
    attributes = models.JSONField(default=dict)
    events = models.JSONField(default=list)

    class Meta:
        ordering = ["trace_id", "start_ns"]

    def __str__(self) -> str:
        return self.name
