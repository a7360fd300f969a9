"""System checks of the metrics settings."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_metrics_networks(app_configs, **kwargs) -> list[Error]:
    errors = []
    for entry in settings.METRICS_ALLOWED_NETWORKS:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"METRICS_ALLOWED_NETWORKS entry {entry!r} is not an IP address or network.",
                    hint="Use addresses or CIDR networks, e.g. 127.0.0.0/8,10.0.0.0/8.",
                    id="metrics.E001",
                )
            )
    return errors
