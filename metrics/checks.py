"""System checks of the metrics settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from labdropbox.proxies import network_errors


@register()
def check_metrics_networks(app_configs, **kwargs) -> list[Error]:
    return network_errors(
        "METRICS_ALLOWED_NETWORKS", settings.METRICS_ALLOWED_NETWORKS, "metrics.E001"
    )
