"""Metrics of files' state that are read from the database when Prometheus scrapes (files.apps
adds them to metrics.registry.SCRAPE_COLLECTORS)."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from files.models import Upload


class UnfinishedUploads(Collector):
    """Resumable uploads started and neither finished nor expired, as the database has them."""

    def collect(self) -> Iterator[Metric]:
        count = Upload.objects.filter(completed_at=None, expires_at__gt=timezone.now()).count()
        yield GaugeMetricFamily(
            "labdropbox_resumable_uploads_unfinished",
            "Resumable uploads started and neither finished nor expired.",
            value=count,
        )
