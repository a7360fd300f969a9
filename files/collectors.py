"""Metrics of files' state that are read from the database when Prometheus scrapes (files.apps
adds them to metrics.registry.SCRAPE_COLLECTORS)."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from files.models import Blob, TrashEntry, Upload, Version


class UnfinishedUploads(Collector):
    """Resumable uploads started and neither finished nor expired, as the database has them."""

    def collect(self) -> Iterator[Metric]:
        count = Upload.objects.filter(completed_at=None, expires_at__gt=timezone.now()).count()
        yield GaugeMetricFamily(
            "labdropbox_resumable_uploads_unfinished",
            "Resumable uploads started and neither finished nor expired.",
            value=count,
        )


class KeptForUndo(Collector):
    """What the trash and replaced versions keep until their retention ends, and the writes
    in flight whose records cover their chunks, as the database has them."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "labdropbox_trash_entries",
            "Files and folders in the trash (a folder counts once, with what is in it).",
            value=TrashEntry.objects.count(),
        )
        yield GaugeMetricFamily(
            "labdropbox_versions_replaced",
            "Earlier versions of files, kept VERSION_RETENTION_DAYS after they were replaced.",
            value=Version.objects.exclude(replaced_at=None).count(),
        )
        yield GaugeMetricFamily(
            "labdropbox_writes_in_flight",
            "Writes recorded and not yet committed (their chunks are never collected).",
            value=Blob.objects.filter(state=Blob.State.WRITING).count(),
        )
