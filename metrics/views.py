"""GET /metrics: the Prometheus text format (OpenMetrics when the scraper asks for it), summed
over the gunicorn workers, for scrapers that may see it (see may_scrape)."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from labdropbox.api.errors import MetricsForbidden, Unauthorized
from labdropbox.api.requests import bearer_token
from labdropbox.api.views import api_view
from labdropbox.proxies import client_address
from metrics.registry import SCRAPE_COLLECTORS


@api_view("GET", "HEAD", public=True)
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        raise MetricsForbidden()
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(scrape_registry()), content_type=content_type)


def may_scrape(request: HttpRequest) -> bool:
    """METRICS_TOKEN as the bearer token, or a client in METRICS_ALLOWED_NETWORKS (loopback by
    default), or anyone while the API itself is open."""
    if settings.METRICS_TOKEN:
        try:
            token = bearer_token(request.headers.get("Authorization", ""))
        except Unauthorized:  # a malformed header proves nothing; the address may still do
            token = None
        if token is not None and hmac.compare_digest(
            token.encode(), settings.METRICS_TOKEN.encode()
        ):
            return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return settings.API_OPEN
    allowed = any(address in network for network in allowed_networks())
    return allowed or settings.API_OPEN


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """METRICS_ALLOWED_NETWORKS (an entry that is not one is an error of `manage.py check`)."""
    networks = []
    for entry in settings.METRICS_ALLOWED_NETWORKS:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return networks


def scrape_registry() -> CollectorRegistry:
    """Every worker's samples (from PROMETHEUS_MULTIPROC_DIR under gunicorn, else this
    process's), and what is read from the database at scrape time."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(ProcessRegistry())
    for collector in SCRAPE_COLLECTORS:
        registry.register(collector)
    return registry


class ProcessRegistry:
    """This process's own registry (a test, runserver), through a per-scrape registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
