"""System checks of the metrics settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import Error, register

from labdropbox.proxies import network_errors


@register()
def check_metrics_networks(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    return network_errors(
        "METRICS_ALLOWED_NETWORKS", settings.METRICS_ALLOWED_NETWORKS, "metrics.E001"
    )
