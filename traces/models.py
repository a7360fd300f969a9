"""Traces kept by the built-in recorder (traces/recorder.py), for the admin's waterfall."""

from __future__ import annotations

from django.db import models


class RecordedTrace(models.Model):
    """One recorded trace: a summary row for the list, its spans in RecordedSpan."""

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
    # A trace's spans sit together in TiDB's clustered index.
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
